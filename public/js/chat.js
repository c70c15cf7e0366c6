// The chat page: one Socket.IO connection, one conversation remembered in localStorage.
// Everything the server sends is rendered with textContent, never parsed as HTML.
(function () {
  "use strict";

  const KEYS = { user: "supportbot.userId", session: "supportbot.sessionId" };
  const SESSION_ID = /^[A-Za-z0-9_-]{16,128}$/; // the spec's SessionIdValue
  const REPLY_TIMEOUT_MS = 60000; // Send comes back even if a reply never arrives
  const TYPING_IDLE_MS = 2000;    // "stopped typing" this long after the last key
  const RATING_ACK_MS = 5000;     // no `rated` over the socket by then: try the REST route
  const CONTACT_ACK_MS = 5000;    // no `contact-saved` over the socket by then: the REST route
  const HEALTH_EVERY_MS = 30000;
  const MAX_ALERTS = 3;

  const $ = (id) => document.getElementById(id);
  const i18n = window.SupportBotI18n;
  /** A label in the customer's language (public/js/i18n.js, from the server's catalogues). */
  const t = (key, vars) => (i18n ? i18n.t(key, vars) : key);
  const embed = window.SupportBotEmbed || null; // set by public/js/embed.js inside the widget
  const els = {
    messages: $("messages"), form: $("composer"), input: $("message"), send: $("send"),
    counter: $("counter"), hint: $("hint"), typing: $("typing"), escalation: $("escalation"),
    alerts: $("alerts"), announcer: $("announcer"), connection: $("connection"),
    providers: $("providers"), providersSummary: $("providers-summary"),
    statusDetails: $("status-details"), newChat: $("new-chat"),
    csat: $("csat"), csatStars: $("csat-stars"), csatValue: $("csat-value"), csatComment: $("csat-comment"),
    csatError: $("csat-error"), csatSubmit: $("csat-submit"), csatSkip: $("csat-skip"),
    contact: $("contact"), contactEmail: $("contact-email"), contactNext: $("contact-next"),
    contactHelp: $("contact-help"), contactError: $("contact-error"),
    contactSubmit: $("contact-submit"), contactSkip: $("contact-skip"),
  };
  const coarsePointer = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;

  // --- storage (tolerates browsers where localStorage is disabled) ----------------
  const memory = new Map();
  const store = {
    get(key) {
      try { return localStorage.getItem(key); } catch (err) { return memory.get(key) || null; }
    },
    set(key, value) {
      if (value) memory.set(key, value); else memory.delete(key);
      try {
        if (value) localStorage.setItem(key, value); else localStorage.removeItem(key);
      } catch (err) { /* memory only */ }
    },
  };

  function randomId() {
    const bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function userId() {
    let id = store.get(KEYS.user);
    if (!id || id.length > 128) {
      id = randomId();
      store.set(KEYS.user, id);
    }
    return id;
  }

  function savedSessionId() {
    const id = store.get(KEYS.session);
    return id && SESSION_ID.test(id) ? id : null;
  }

  // --- state -------------------------------------------------------------------------
  const state = {
    sessionId: null,
    joining: null,        // {withSession} while a join-chat awaits its answer
    pending: null,        // {text, li, timer} while a sent message awaits its reply
    connected: false,
    max: Number(els.input.getAttribute("maxlength")) || 4000,
    nearLimitAnnounced: false,
    escalation: null,     // the notice's reasons line while it shows
    status: null,         // the conversation's: active | escalated | assigned | resolved
    agentName: null,      // who holds it, while a person does
    queuePosition: null,  // while waiting for a person
    typingOut: null,      // {sessionId, timer} while the customer types to a person
    rating: null,         // {episode, sending, timer} while the rating prompt is up
    contact: null,        // {episode, nextOpening, sending, timer, email} while the e-mail form is up
    nobodyLive: null,     // "offered" | "saved" once nobody could answer live (this episode)
    contactEmail: null,   // the address a ticket was left with
  };
  const byId = new Map(); // messageId -> <li>

  // --- small DOM helpers ---------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function nearBottom() {
    const m = els.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function scrollDown() { els.messages.scrollTop = els.messages.scrollHeight; }

  // Keep the latest message in view when the list shrinks (keyboard, notices) unless the
  // reader has scrolled up to read something older.
  let following = true;
  els.messages.addEventListener("scroll", () => { following = nearBottom(); }, { passive: true });
  if (window.ResizeObserver) {
    new ResizeObserver(() => { if (following) scrollDown(); }).observe(els.messages);
  }

  function announce(text) {
    const line = el("p", null, text);
    els.announcer.appendChild(line);
    while (els.announcer.childElementCount > 3) els.announcer.firstElementChild.remove();
  }

  // --- messages ----------------------------------------------------------------------------
  const WHO = { user: "page.you_said", assistant: "page.assistant_said", agent: "", system: "" };

  /** A message; an agent's carries the agent's name (`name`) above the text. */
  function addMessage(role, text, id, name) {
    const stick = role === "user" || nearBottom();
    const li = el("li", "msg msg--" + (WHO[role] === undefined ? "system" : role));
    if (role === "agent") {
      li.appendChild(el("span", "msg__who", name || t("page.support_team")));
      li.appendChild(el("span", "visually-hidden", t("page.said")));
    } else if (WHO[role]) {
      li.appendChild(el("span", "visually-hidden", t(WHO[role])));
    }
    li.appendChild(el("span", "msg__text", text || ""));
    if (id) {
      li.dataset.id = id;
      byId.set(id, li);
    }
    els.messages.appendChild(li);
    if (stick) scrollDown();
    return li;
  }

  function textOf(li) { return li.querySelector(".msg__text"); }

  function percent(value) {
    const n = Number(value);
    return Number.isFinite(n) ? Math.round(Math.min(1, Math.max(0, n)) * 100) : null;
  }

  function safeUrl(url) {
    if (typeof url !== "string") return null;
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (err) {
      return null;
    }
  }

  /** The caption ("answered by local · confidence 97%") and the sources of a bot reply. */
  function describe(li, reply) {
    li.querySelectorAll(".msg__meta, .msg__sources").forEach((node) => node.remove());
    const parts = [];
    if (reply.provider) parts.push(t("page.answered_by", { provider: reply.provider }));
    const pct = percent(reply.confidence);
    if (pct !== null) parts.push(t("page.confidence", { percent: pct }));
    if (parts.length) li.appendChild(el("span", "msg__meta", parts.join(" · ")));

    const sources = Array.isArray(reply.sources) ? reply.sources : [];
    const list = el("ul", "msg__sources");
    list.setAttribute("aria-label", t("page.sources"));
    for (const source of sources) {
      if (!source || typeof source !== "object") continue;
      const title = source.title || source.id;
      if (!title) continue;
      const item = el("li");
      const href = safeUrl(source.url);
      if (href) {
        const link = el("a", null, title);
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        item.appendChild(link);
      } else {
        item.textContent = String(title);
      }
      list.appendChild(item);
    }
    if (list.childElementCount) li.appendChild(list);
  }

  function clearTranscript() {
    els.messages.replaceChildren();
    byId.clear();
  }

  /** What a lifecycle step says to the customer (the transcript's own words are for agents). */
  function systemText(entry) {
    const by = entry.by && typeof entry.by.name === "string" ? entry.by.name : null;
    switch (entry.event) {
      case "escalated": return null; // the bot's own reply and the notice say so
      case "assigned": return t("page.joined", { name: by || t("page.someone") });
      case "transferred": return t("page.transferred");
      case "released": return t("page.released");
      case "handed_back": return t("page.handed_back");
      case "resolved": return t("page.resolved");
      case "rated": return t("page.rated");
      case "ticket_created": return t("page.ticket_created");
      case "reopened": return null;
      default: return typeof entry.content === "string" && entry.content ? entry.content : null;
    }
  }

  function showHistory(history) {
    clearTranscript();
    for (const entry of Array.isArray(history) ? history : []) {
      if (!entry || typeof entry.content !== "string") continue;
      if (entry.role === "note") continue; // never sent to customers; never shown if it were
      if (entry.role === "system") {
        const text = systemText(entry);
        if (text) addMessage("system", text, entry.id);
        continue;
      }
      if (entry.role === "agent") {
        addMessage("agent", entry.content, entry.id, entry.agentName);
        continue;
      }
      const li = addMessage(entry.role === "user" ? "user" : "assistant", entry.content, entry.id);
      if (entry.role === "assistant") {
        if (entry.notice) li.classList.add("msg--notice");
        else describe(li, entry);
      }
    }
    scrollDown();
  }

  /** Who holds the conversation, from the transcript: the last agent to join or write. */
  function holderFrom(history) {
    for (const entry of (Array.isArray(history) ? history : []).slice().reverse()) {
      if (!entry) continue;
      if (entry.role === "agent" && entry.agentName) return entry.agentName;
      if (entry.role === "system" && entry.event === "assigned" && entry.by) return entry.by.name || null;
    }
    return null;
  }

  /** True when the last resolved episode has no rating yet. */
  function awaitsRating(history) {
    for (const entry of (Array.isArray(history) ? history : []).slice().reverse()) {
      if (entry && entry.role === "system" && entry.event === "rated") return false;
      if (entry && entry.role === "system" && entry.event === "resolved") return true;
    }
    return false;
  }

  function lastEscalationReasons(history) {
    for (const entry of (Array.isArray(history) ? history : []).slice().reverse()) {
      if (entry && Array.isArray(entry.escalation)) return entry.escalation;
    }
    return [];
  }

  // --- notices -------------------------------------------------------------------------------
  const RULE_TEXT = {
    low_confidence: "page.rule_low_confidence",
    technical_error: "page.rule_technical_error",
    requested: "page.rule_requested",
    unsupported_language: "page.rule_unsupported_language",
  };

  /** "Why: you mentioned “urgent” and “manager”; it needs a person." (or "" without reasons) */
  function reasonsText(reasons) {
    const words = [];
    const phrases = [];
    for (const reason of Array.isArray(reasons) ? reasons : []) {
      const rule = reason && typeof reason.rule === "string" ? reason.rule : null;
      if (rule === "keyword" && reason.detail) words.push("“" + reason.detail + "”");
      else if (rule) phrases.push(RULE_TEXT[rule] ? t(RULE_TEXT[rule]) : rule.replace(/_/g, " "));
    }
    const unique = [...new Set(words)];
    if (unique.length) {
      const last = unique.pop();
      const words = (unique.length ? unique.join(", ") + t("page.and") : "") + last;
      phrases.unshift(t("page.mentioned", { words }));
    }
    const all = [...new Set(phrases)];
    return all.length ? t("page.why", { reasons: all.join("; ") }) : "";
  }

  /** Idempotent: the same notice is not re-announced; a later event may add the reasons. */
  function showEscalation(reasons) {
    const why = reasonsText(reasons);
    if (state.escalation !== null && (state.escalation === why || !why)) return;
    state.escalation = why;
    renderEscalation();
  }

  function renderEscalation() {
    if (state.nobodyLive) {
      // Nobody can answer live: say so, and what happens instead.
      const head = el("strong", null, t("page.nobody_live"));
      const body = el("p", "notice__more", state.nobodyLive === "saved"
        ? (state.contactEmail ? t("page.by_email_at", { email: state.contactEmail }) : t("page.by_email"))
        : t("page.leave_below"));
      els.escalation.replaceChildren(head, body);
      if (state.escalation) els.escalation.appendChild(el("p", null, state.escalation));
      return;
    }
    const head = el("strong", null, t("page.takeover"));
    const body = el("p", "notice__more", t("page.passed_on"));
    els.escalation.replaceChildren(head, body);
    if (state.queuePosition) {
      const place = state.queuePosition === 1 ? t("page.queue_next")
        : t("page.queue_number", { n: state.queuePosition });
      els.escalation.appendChild(el("p", "notice__queue", place));
    }
    if (state.escalation) els.escalation.appendChild(el("p", null, state.escalation));
  }

  /** The queue position while waiting; shown in the notice (a status region) when it changes. */
  function setQueuePosition(position) {
    const n = Number(position);
    const next = Number.isInteger(n) && n > 0 ? n : null;
    if (next === state.queuePosition) return;
    state.queuePosition = next;
    if (state.escalation !== null) renderEscalation();
  }

  function hideEscalation() {
    state.escalation = null;
    state.queuePosition = null;
    state.nobodyLive = null;
    els.escalation.replaceChildren();
  }

  function alertUser(text) {
    const message = String(text || t("page.went_wrong"));
    for (const existing of els.alerts.querySelectorAll(".alert")) {
      if (existing.dataset.text === message) existing.remove();
    }
    const box = el("div", "alert");
    box.setAttribute("role", "alert");
    box.dataset.text = message;
    box.appendChild(el("p", null, message));
    const close = el("button", "alert__close", "×");
    close.type = "button";
    close.setAttribute("aria-label", t("page.dismiss"));
    close.addEventListener("click", () => dismiss(box));
    box.addEventListener("keydown", (event) => { if (event.key === "Escape") dismiss(box); });
    box.appendChild(close);
    els.alerts.appendChild(box);
    while (els.alerts.childElementCount > MAX_ALERTS) els.alerts.firstElementChild.remove();
  }

  function dismiss(box) {
    box.remove();
    els.input.focus();
  }

  /** "Assistant is typing…", or "<agent> is typing…" when `who` names a person. */
  function setTyping(on, who) {
    if (!on) { els.typing.replaceChildren(); return; }
    const label = t("page.typing", { who: who || t("page.assistant") });
    if (els.typing.textContent === label) return;
    const dots = el("span", "dots");
    dots.setAttribute("aria-hidden", "true");
    els.typing.replaceChildren(dots, document.createTextNode(label));
  }

  /** A person has (or is about to have) the conversation: no bot reply to wait for. */
  function withPeople() {
    return state.status === "escalated" || state.status === "assigned";
  }

  function setConnection(stateName, label) {
    els.connection.dataset.state = stateName;
    els.connection.textContent = label;
  }

  // --- composer ---------------------------------------------------------------------------------
  function updateComposer() {
    const length = els.input.value.length;
    const near = length >= state.max * 0.9;
    els.counter.replaceChildren(
      document.createTextNode(length + " / " + state.max),
      el("span", "visually-hidden", t("page.characters")),
    );
    els.counter.classList.toggle("counter--near", near);
    if (near && !state.nearLimitAnnounced) announce(t("page.characters_left", { n: state.max - length }));
    state.nearLimitAnnounced = near;

    const ready = state.connected && state.sessionId && !state.joining;
    els.send.disabled = !ready || Boolean(state.pending) || !els.input.value.trim() || length > state.max;
    els.hint.textContent = state.pending ? t("page.waiting")
      : !ready ? t("page.connecting_support")
      : coarsePointer ? "" : t("page.hint");
  }

  function autosize() {
    els.input.style.height = "auto";
    els.input.style.height = Math.min(els.input.scrollHeight + 2, 160) + "px";
  }

  function settle() {
    if (!state.pending) return;
    clearTimeout(state.pending.timer);
    state.pending = null;
    updateComposer();
  }

  /** The message in flight was refused: mark it and give its text back. */
  function failPending(note) {
    const pending = state.pending;
    if (!pending) return;
    settle();
    pending.li.classList.add("msg--failed");
    pending.li.appendChild(el("span", "msg__meta", note || t("page.not_sent")));
    if (!els.input.value.trim()) {
      els.input.value = pending.text;
      autosize();
      updateComposer();
    }
  }

  // --- socket -----------------------------------------------------------------------------------
  if (typeof window.io !== "function") {
    (i18n ? i18n.ready : Promise.resolve()).then(() => {
      setConnection("disconnected", t("page.offline"));
      alertUser(t("page.client_missing"));
      updateComposer();
    });
    return;
  }

  // WebSocket first (no sticky sessions needed behind several workers), polling if it fails.
  // It connects once the labels are in (i18n.ready), so the first words are in the right language.
  const socket = window.io({ transports: ["websocket", "polling"], tryAllTransports: true, autoConnect: false });

  function join() {
    const sessionId = savedSessionId();
    const payload = { userId: userId() };
    if (sessionId) payload.sessionId = sessionId;
    else {
      // The widget's language, or the browser's when a catalogue has it (else the server
      // goes by the language of the customer's messages).
      if (i18n && i18n.negotiated) payload.language = i18n.language;
      // So the server names times in the customer's own zone ("back tomorrow at 09:00 …").
      const zone = customerTimeZone();
      if (zone) payload.metadata = { timezone: zone };
    }
    state.joining = { withSession: Boolean(sessionId) };
    updateComposer();
    socket.emit("join-chat", payload);
  }

  function customerTimeZone() {
    try {
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      return typeof zone === "string" && zone ? zone : null;
    } catch (err) {
      return null;
    }
  }

  function forgetSession() {
    store.set(KEYS.session, null);
    state.sessionId = null;
  }

  socket.on("connect", () => {
    state.connected = true;
    setConnection("connected", t("page.connected"));
    join();
    refreshStatus();
  });

  socket.on("disconnect", () => {
    state.connected = false;
    state.joining = null;
    setTyping(false);
    settle();
    if (socket.active) setConnection("reconnecting", t("page.reconnecting"));
    else setConnection("disconnected", t("page.disconnected"));
    updateComposer();
  });

  socket.on("connect_error", () => {
    state.connected = false;
    if (socket.active) setConnection("reconnecting", t("page.reconnecting"));
    else setConnection("disconnected", t("page.disconnected"));
    updateComposer();
  });

  socket.io.on("reconnect_failed", () => setConnection("disconnected", t("page.disconnected")));

  socket.on("chat-joined", (data) => {
    if (!data || typeof data.sessionId !== "string") return;
    const restarted = state.joining && state.joining.restartedAfter;
    state.joining = null;
    state.sessionId = data.sessionId;
    store.set(KEYS.session, data.sessionId);
    settle();
    setTyping(false);
    stopTyping();
    showHistory(data.history);
    state.status = typeof data.status === "string" ? data.status : "active";
    state.agentName = state.status === "assigned" ? holderFrom(data.history) : null;
    if (state.status === "escalated") showEscalation(lastEscalationReasons(data.history));
    else hideEscalation();
    if (state.status === "resolved" && awaitsRating(data.history)) askForRating(null);
    else hideRating();
    if (state.contact && state.contact.sessionId !== data.sessionId) hideContact();
    if (!els.messages.childElementCount) {
      addMessage("system", (embed && embed.greeting) || t("page.greeting"));
    }
    if (restarted) addMessage("system", restarted);
    updateComposer();
    if (!coarsePointer && document.activeElement === document.body) els.input.focus();
  });

  socket.on("typing", (data) => {
    if (!data || data.sessionId !== state.sessionId) return;
    const who = data.sender === "agent" ? data.agentName || state.agentName || t("page.support_agent") : null;
    setTyping(Boolean(data.isTyping), who);
  });

  function forThisSession(data) {
    return data && (!data.sessionId || data.sessionId === state.sessionId);
  }

  socket.on("message-chunk", (data) => {
    if (!forThisSession(data) || typeof data.messageId !== "string") return;
    let li = byId.get(data.messageId);
    if (!li) li = addMessage("assistant", "", data.messageId);
    li.classList.add("msg--streaming");
    setTyping(false);
    const stick = nearBottom();
    textOf(li).textContent += typeof data.delta === "string" ? data.delta : "";
    if (stick) scrollDown();
  });

  socket.on("message-reset", (data) => {
    if (!forThisSession(data)) return;
    const li = byId.get(data.messageId);
    if (li) textOf(li).textContent = ""; // a fallback provider takes over
  });

  socket.on("message-received", (data) => {
    if (!forThisSession(data) || typeof data.message !== "string") return;
    if (data.sender === "agent") {
      if (data.messageId && byId.has(data.messageId)) return;
      const name = typeof data.agentName === "string" && data.agentName ? data.agentName : state.agentName;
      if (name) state.agentName = name;
      addMessage("agent", data.message, data.messageId, name);
      setTyping(false);
      settle();
      announce((name || t("page.support_agent")) + t("page.said") + data.message);
      if (embed) embed.arrived();
      return;
    }
    if (data.isBot === false) {
      // The customer's own words, sent from another tab or over the REST API.
      if (data.messageId && byId.has(data.messageId)) return;
      addMessage("user", data.message, data.messageId);
      announce(t("page.you_said") + data.message);
      return;
    }
    const stick = nearBottom();
    let li = data.messageId ? byId.get(data.messageId) : null;
    if (!li) li = addMessage("assistant", "", data.messageId);
    li.classList.remove("msg--streaming");
    textOf(li).textContent = data.message;
    if (data.notice) li.classList.add("msg--notice"); // a holding notice while waiting
    else describe(li, data);
    if (stick) scrollDown();
    setTyping(false);
    settle();
    announce(t("page.assistant_said") + data.message);
    if (embed) embed.arrived();
    if (data.needsEscalation) showEscalation(data.escalation && data.escalation.reasons);
  });

  socket.on("escalation-needed", (data) => {
    if (data && data.sessionId === state.sessionId) showEscalation(data.reasons);
  });

  // --- a person takes over, hands back, resolves --------------------------------------------------
  socket.on("agent-joined", (data) => {
    if (!forThisSession(data)) return;
    const name = typeof data.agentName === "string" && data.agentName ? data.agentName : t("page.someone");
    state.agentName = name;
    state.status = "assigned";
    hideEscalation();
    hideContact();
    addMessage("system", t("page.joined", { name }));
    announce(t("page.joined", { name }));
    settle();
    updateComposer();
  });

  socket.on("conversation-updated", (data) => {
    if (!forThisSession(data) || typeof data.status !== "string") return;
    const previous = state.status;
    state.status = data.status;
    if (typeof data.agentName === "string" && data.agentName) state.agentName = data.agentName;
    if (data.status === "escalated") {
      if (state.escalation === null) showEscalation([]);
      setQueuePosition(data.queuePosition);
      if (data.event === "released") {
        state.agentName = null;
        setTyping(false);
        addMessage("system", t("page.released"));
      }
    } else if (data.status === "assigned") {
      hideEscalation();
    } else {
      hideEscalation();
      setTyping(false);
      state.agentName = null;
      if (data.status === "active" && data.event === "handed_back") {
        addMessage("system", t("page.handed_back"));
        announce(t("page.assistant_back"));
      } else if (data.status === "resolved" && previous !== "resolved") {
        addMessage("system", t("page.resolved"));
      }
    }
    if (!withPeople()) stopTyping();
    if (data.status !== "resolved") hideRating();
    if (data.status !== "escalated") hideContact();
    settle();
    updateComposer();
  });

  socket.on("csat-request", (data) => {
    if (forThisSession(data)) askForRating(data.episode);
  });

  socket.on("rated", (data) => {
    if (forThisSession(data) && state.rating) ratingDone();
  });

  socket.on("contact-requested", (data) => {
    if (data && data.sessionId === state.sessionId) askForContact(data);
  });

  socket.on("contact-saved", (data) => {
    if (data && data.sessionId === state.sessionId && state.contact && state.contact.sending) contactDone();
  });

  socket.on("error", (data) => {
    const code = data && data.code;
    if (code === "IDENTITY_REFUSED") return; // the widget's identify (public/js/embed.js)
    const message = data && typeof data.message === "string" ? data.message : null;
    const joining = state.joining;
    if (state.contact && state.contact.sending && !state.pending && !joining) {
      contactFailed(code, message);
      return;
    }
    if (state.rating && state.rating.sending && !state.pending && !joining) {
      ratingFailed(code, message);
      return;
    }
    if (joining && joining.withSession && (code === "SESSION_NOT_FOUND" || code === "INVALID_PAYLOAD")) {
      // The remembered conversation has expired (or was never valid): start a new one.
      forgetSession();
      join();
      state.joining.restartedAfter = t("page.restarted");
      return;
    }
    if (code === "SESSION_NOT_FOUND" && !joining) {
      failPending(t("page.not_sent_expired"));
      forgetSession();
      hideEscalation();
      join();
      state.joining.restartedAfter = t("page.expired");
      return;
    }
    if (joining) state.joining = null;
    failPending();
    alertUser(message || t("page.try_again"));
    updateComposer();
  });

  // --- page controls -------------------------------------------------------------------------------
  els.input.addEventListener("input", () => { autosize(); updateComposer(); noteTyping(); });
  els.input.addEventListener("blur", () => stopTyping());

  /** Tell the person on the other side the customer is typing (only while a person has it). */
  function noteTyping() {
    if (!withPeople() || !state.connected || !state.sessionId || !els.input.value.trim()) {
      stopTyping();
      return;
    }
    if (!state.typingOut || state.typingOut.sessionId !== state.sessionId) {
      stopTyping();
      state.typingOut = { sessionId: state.sessionId, timer: 0 };
      socket.emit("typing", { sessionId: state.sessionId, isTyping: true });
    }
    clearTimeout(state.typingOut.timer);
    state.typingOut.timer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    const out = state.typingOut;
    if (!out) return;
    clearTimeout(out.timer);
    state.typingOut = null;
    if (state.connected) socket.emit("typing", { sessionId: out.sessionId, isTyping: false });
  }
  els.input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || coarsePointer) return;
    event.preventDefault();
    els.form.requestSubmit();
  });

  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.input.value.trim();
    if (els.send.disabled || !text || text.length > state.max) return;
    stopTyping();
    const li = addMessage("user", text);
    if (!withPeople()) {
      // The bot answers: hold the box until it has. A person answers in their own time.
      const pending = { text, li, timer: 0 };
      pending.timer = setTimeout(() => { if (state.pending === pending) settle(); }, REPLY_TIMEOUT_MS);
      state.pending = pending;
    }
    socket.emit("send-message", { sessionId: state.sessionId, message: text, userId: userId() });
    els.input.value = "";
    autosize();
    updateComposer();
  });

  els.newChat.addEventListener("click", () => {
    stopTyping();
    forgetSession();
    settle();
    setTyping(false);
    hideEscalation();
    hideRating();
    hideContact();
    state.contactEmail = null;
    state.status = null;
    state.agentName = null;
    els.alerts.replaceChildren();
    clearTranscript();
    if (state.connected) join();
    else updateComposer();
    els.input.focus();
  });

  // --- the rating after a person resolved the conversation ----------------------------------------
  function checkedRating() {
    const input = els.csat.querySelector('input[name="rating"]:checked');
    return input ? Number(input.value) : null;
  }

  function showStars() {
    const rating = checkedRating();
    els.csatStars.dataset.value = rating ? String(rating) : "";
    const words = ["", ...t("page.rating_words").split(",")];
    els.csatValue.textContent = rating ? words[rating] : "";
  }

  function askForRating(episode) {
    if (state.rating && state.rating.episode === episode && !els.csat.hidden) return;
    clearTimeout(state.rating && state.rating.timer);
    state.rating = { episode, sending: false, timer: 0, hadFocus: false };
    els.csat.reset();
    showStars();
    els.csatError.textContent = "";
    els.csatSubmit.disabled = false;
    els.csat.hidden = false;
    announce(t("page.rate_prompt"));
    scrollDown();
  }

  function hideRating() {
    if (state.rating) clearTimeout(state.rating.timer);
    state.rating = null;
    els.csat.hidden = true;
  }

  function ratingDone() {
    // Focus was in the form (the submit button loses it while disabled): hand it to the box.
    const wasFocused = els.csat.contains(document.activeElement) || (state.rating && state.rating.hadFocus);
    hideRating();
    addMessage("system", t("page.rated"));
    announce(t("page.rated"));
    if (wasFocused) els.input.focus();
  }

  function ratingFailed(code, message) {
    if (!state.rating) return;
    if (code === "NOTHING_TO_RATE") { ratingDone(); return; } // already rated (another tab)
    clearTimeout(state.rating.timer);
    state.rating.sending = false;
    els.csatSubmit.disabled = false;
    els.csatError.textContent = message || t("page.rating_failed");
    if (state.rating.hadFocus && document.activeElement === document.body) els.csatSubmit.focus();
  }

  /** The REST route, when the socket is down or did not answer. */
  async function rateOverRest(payload) {
    try {
      const res = await fetch("/api/v1/chat/session/" + encodeURIComponent(payload.sessionId) + "/rating", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ rating: payload.rating, ...(payload.comment ? { comment: payload.comment } : {}) }),
      });
      if (res.ok) { ratingDone(); return; }
      let body = null;
      try { body = await res.json(); } catch (err) { body = null; }
      ratingFailed(body && body.code, body && typeof body.detail === "string" ? body.detail : null);
    } catch (err) {
      ratingFailed(null, t("page.rating_offline"));
    }
  }

  els.csatStars.addEventListener("change", () => {
    showStars();
    els.csatError.textContent = "";
  });

  els.csat.addEventListener("submit", (event) => {
    event.preventDefault();
    const rating = checkedRating();
    if (!state.rating || state.rating.sending || !state.sessionId) return;
    if (!rating) {
      els.csatError.textContent = t("page.choose_stars");
      els.csat.querySelector('input[name="rating"]').focus();
      return;
    }
    const comment = els.csatComment.value.trim();
    const payload = { sessionId: state.sessionId, rating };
    if (comment) payload.comment = comment;
    state.rating.sending = true;
    state.rating.hadFocus = els.csat.contains(document.activeElement);
    els.csatSubmit.disabled = true;
    els.csatError.textContent = "";
    if (state.connected) {
      const pending = state.rating;
      socket.emit("rate", payload);
      pending.timer = setTimeout(() => {
        if (state.rating === pending && pending.sending) rateOverRest(payload);
      }, RATING_ACK_MS);
    } else {
      rateOverRest(payload);
    }
  });

  els.csatSkip.addEventListener("click", () => {
    hideRating();
    els.input.focus();
  });

  // --- the e-mail form when nobody can answer live ----------------------------------------------
  /** The page's language with the browser's region when they agree (en + en-GB -> en-GB:
   *  "Monday 7 January"), else the page's language; dates read as the customer expects. */
  function dateLocale() {
    const lang = i18n ? i18n.language : undefined;
    if (!lang) return undefined;
    const own = (navigator.languages || []).find((tag) => tag.toLowerCase().split("-")[0] === lang);
    return own || lang;
  }

  /** "Monday 12 January, 09:00 GMT+1": the next opening in the customer's locale and zone. */
  function openingText(iso) {
    const t = typeof iso === "string" ? Date.parse(iso) : NaN;
    if (!Number.isFinite(t)) return null;
    const when = new Date(t);
    try {
      return new Intl.DateTimeFormat(dateLocale(), {
        weekday: "long", day: "numeric", month: "long", hour: "numeric", minute: "2-digit",
        timeZoneName: "short",
      }).format(when);
    } catch (err) {
      return when.toLocaleString();
    }
  }

  function setContactError(text) {
    els.contactError.textContent = text || "";
    if (text) els.contactEmail.setAttribute("aria-invalid", "true");
    else els.contactEmail.removeAttribute("aria-invalid");
  }

  function askForContact(data) {
    const episode = data.episode === undefined ? null : data.episode;
    if (state.contact && state.contact.episode === episode && !els.contact.hidden) return;
    clearTimeout(state.contact && state.contact.timer);
    state.contact = {
      sessionId: state.sessionId, episode, sending: false, timer: 0, email: null, hadFocus: false,
    };
    state.nobodyLive = "offered";
    if (state.escalation === null) state.escalation = "";
    renderEscalation();
    els.contactHelp.textContent = typeof data.message === "string" && data.message
      ? data.message : t("page.contact_help");
    const when = openingText(data.nextOpening);
    els.contactNext.textContent = when ? t("page.back_when", { when }) : "";
    els.contactNext.hidden = !when;
    els.contact.reset();
    setContactError("");
    els.contactSubmit.disabled = false;
    els.contact.hidden = false;
    announce(t("page.nobody_announce"));
    scrollDown();
  }

  function hideContact() {
    if (state.contact) clearTimeout(state.contact.timer);
    state.contact = null;
    els.contact.hidden = true;
  }

  function contactDone() {
    const contact = state.contact;
    if (!contact) return;
    const wasFocused = els.contact.contains(document.activeElement) || contact.hadFocus;
    state.contactEmail = contact.email;
    hideContact();
    const text = t("page.contact_thanks", { email: contact.email });
    addMessage("system", text).classList.add("msg--confirm");
    announce(text);
    if (state.nobodyLive) {
      state.nobodyLive = "saved";
      renderEscalation();
    }
    if (wasFocused) els.input.focus();
  }

  function contactFailed(code, message) {
    const contact = state.contact;
    if (!contact) return;
    clearTimeout(contact.timer);
    contact.sending = false;
    els.contactSubmit.disabled = false;
    const text = code === "INVALID_PAYLOAD" || code === "VALIDATION_ERROR"
      ? t("page.email_invalid")
      : code === "SESSION_NOT_FOUND" ? t("page.conversation_ended")
      : message || t("page.address_failed");
    setContactError(text);
    els.contactEmail.focus();
  }

  /** The REST route, when the socket is down or did not answer. */
  async function contactOverRest(sessionId, email) {
    try {
      const res = await fetch("/api/v1/chat/session/" + encodeURIComponent(sessionId) + "/contact", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ email }),
      });
      if (res.ok) { contactDone(); return; }
      let body = null;
      try { body = await res.json(); } catch (err) { body = null; }
      const code = body && body.code ? body.code : res.status === 400 ? "INVALID_PAYLOAD" : null;
      contactFailed(code, body && typeof body.detail === "string" ? body.detail : null);
    } catch (err) {
      contactFailed(null, t("page.address_offline"));
    }
  }

  els.contactEmail.addEventListener("input", () => { if (els.contactError.textContent) setContactError(""); });

  els.contact.addEventListener("submit", (event) => {
    event.preventDefault();
    const contact = state.contact;
    if (!contact || contact.sending || !state.sessionId) return;
    const email = els.contactEmail.value.trim();
    if (!email) {
      setContactError(t("page.enter_email"));
      els.contactEmail.focus();
      return;
    }
    if (!els.contactEmail.checkValidity()) {
      setContactError(t("page.email_invalid"));
      els.contactEmail.focus();
      return;
    }
    setContactError("");
    contact.email = email;
    contact.sending = true;
    contact.hadFocus = els.contact.contains(document.activeElement);
    els.contactSubmit.disabled = true;
    const sessionId = state.sessionId;
    if (state.connected) {
      socket.emit("leave-contact", { sessionId, email });
      contact.timer = setTimeout(() => {
        if (state.contact === contact && contact.sending) contactOverRest(sessionId, email);
      }, CONTACT_ACK_MS);
    } else {
      contactOverRest(sessionId, email);
    }
  });

  els.contactSkip.addEventListener("click", () => {
    hideContact();
    els.input.focus();
  });

  // --- providers' status ------------------------------------------------------------------------------
  const STATES = new Set([
    "closed", "open", "half_open", "misconfigured", "not_configured", "configured", "connected",
    "disconnected",
  ]);

  function pill(name, stateName) {
    const label = STATES.has(stateName) ? t("page.state_" + stateName) : stateName || t("page.state_unknown");
    const item = el("li", "pill", name + ": " + label);
    item.dataset.name = name;
    item.dataset.state = stateName || "unknown";
    return item;
  }

  function providerPills(health) {
    const services = health && typeof health.services === "object" && health.services ? health.services : {};
    // The public report has each responder's state in services.responders; an admin's has
    // the detail in responders.
    const states = typeof services.responders === "object" && services.responders ? services.responders : {};
    const detail = health && typeof health.responders === "object" && health.responders ? health.responders : {};
    const items = [];
    const seen = new Set();
    for (const [name, state] of Object.entries(states)) {
      seen.add(name);
      items.push(pill(name, typeof state === "string" ? state : "unknown"));
    }
    for (const [name, info] of Object.entries(detail)) {
      if (seen.has(name)) continue;
      seen.add(name);
      const configured = !(info && info.configured === false);
      items.push(pill(name, configured ? (info && info.state) || "unknown" : "not_configured"));
    }
    for (const name of ["openai", "gemini"]) {
      if (seen.has(name) || typeof services[name] !== "string") continue;
      items.push(pill(name, services[name] === "configured" ? "configured" : "not_configured"));
    }
    if (typeof services.redis === "string") items.push(pill("redis", services.redis));
    return items;
  }

  /** One line for small screens: "AI: 1 of 3 available". */
  function summarize(items) {
    const ai = items.filter((item) => item.dataset.name !== "redis");
    const up = ai.filter((item) => item.dataset.state === "closed").length;
    const redisDown = items.some((item) => item.dataset.name === "redis" && item.dataset.state === "disconnected");
    if (!items.length) return t("page.status");
    return (ai.length ? t("page.ai_available", { up, count: ai.length }) : t("page.status"))
      + (redisDown ? t("page.storage_down") : "");
  }

  // Wide screens show every pill; small ones a summary that opens to the list.
  const wide = window.matchMedia ? window.matchMedia("(min-width: 600px)") : null;
  function fitStatus() { if (!wide || wide.matches) els.statusDetails.open = true; }
  if (wide && wide.addEventListener) wide.addEventListener("change", fitStatus);
  fitStatus();

  async function refreshStatus() {
    if (document.hidden) return;
    try {
      const res = await fetch("/api/v1/health", { headers: { Accept: "application/json" }, cache: "no-store" });
      const health = await res.json();
      const items = providerPills(health);
      els.providers.replaceChildren(...items);
      els.providersSummary.textContent = summarize(items);
    } catch (err) {
      els.providers.replaceChildren(pill("status", "unknown"));
      els.providersSummary.textContent = t("page.status_unknown");
    }
  }

  /** The served spec states the configured message limit; follow it. */
  async function readMessageLimit() {
    try {
      const res = await fetch("/api/v1/openapi.json", { headers: { Accept: "application/json" } });
      const spec = await res.json();
      const max = Number(spec.components.schemas.MessageText.maxLength);
      if (Number.isInteger(max) && max > 0) {
        state.max = max;
        els.input.setAttribute("maxlength", String(max));
        updateComposer();
      }
    } catch (err) { /* keep the page's default */ }
  }

  if (embed) embed.attach({ socket, state, newChat: () => els.newChat.click(), alertUser, t });
  (i18n ? i18n.ready : Promise.resolve()).then(() => {
    setInterval(refreshStatus, HEALTH_EVERY_MS);
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshStatus(); });
    refreshStatus();
    readMessageLimit();
    updateComposer();
    socket.connect();
  });
})();
