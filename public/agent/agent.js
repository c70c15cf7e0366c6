// The agent console: sign in, the live queue, one conversation at a time.
// REST for reading and acting, the /agents Socket.IO namespace for everything live (no polling).
// Everything the server sends is rendered with textContent, never parsed as HTML.
(function () {
  "use strict";

  const API = "/api/v1";
  const KEYS = {
    token: "supportbot.agentToken", agent: "supportbot.agent", expires: "supportbot.agentExpires",
    presence: "supportbot.agentPresence", alerts: "supportbot.agentAlerts",
  };
  const TYPING_IDLE_MS = 2500;       // stop "typing" this long after the last key
  const CUSTOMER_TYPING_MAX_MS = 12000; // hide a customer's typing if its "stopped" never comes
  const RECONNECT_REFUSED_MS = 4000;
  const MAX_TIMER_MS = 2147483647;

  // Every label comes from the message catalogues (public/js/i18n.js, loaded before this file):
  // the browser's language, or ?lang=de in the address to force one.
  const i18n = window.SupportBotI18n;
  const tr = (key, vars) => (i18n ? i18n.t(key, vars) : key);

  const $ = (id) => document.getElementById(id);
  const els = {
    signin: $("signin"), signinForm: $("signin-form"), email: $("email"), password: $("password"),
    signinSubmit: $("signin-submit"), signinError: $("signin-error"), signinInfo: $("signin-info"),
    console: $("console"), connection: $("connection"), presence: $("presence"),
    alertsToggle: $("alerts-toggle"), me: $("me"), signout: $("signout"),
    queueTitle: $("queue-title"), queue: $("queue"), queueEmpty: $("queue-empty"),
    countEscalated: $("count-escalated"), countAssigned: $("count-assigned"),
    filters: Array.from(document.querySelectorAll(".filter")),
    online: $("online"), onlineCount: $("online-count"),
    pane: $("conversation-pane"), paneEmpty: $("pane-empty"), conv: $("conversation"),
    convTitle: $("conv-title"), convStatus: $("conv-status"), convHolder: $("conv-holder"),
    convSession: $("conv-session"), convAlert: $("conv-alert"), reasons: $("reasons"), csat: $("csat"),
    claim: $("claim"), handback: $("handback"), resolve: $("resolve"),
    transferForm: $("transfer-form"), transferTo: $("transfer-to"), transfer: $("transfer"),
    transcript: $("transcript"), customerTyping: $("customer-typing"),
    summary: $("summary"), suggestions: $("suggestions"),
    composer: $("composer"), reply: $("reply"), replyLabel: $("reply-label"), send: $("send"),
    hint: $("composer-hint"), announcer: $("announcer"),
    resolveDialog: $("resolve-dialog"), resolveForm: $("resolve-form"), resolveNote: $("resolve-note"),
    resolveCancel: $("resolve-cancel"), resolveConfirm: $("resolve-confirm"),
    urgent: $("urgent-announcer"), offers: $("offers"),
    viewConversations: $("view-conversations"), viewTickets: $("view-tickets"),
    conversationsView: $("conversations-view"), ticketsView: $("tickets-view"),
    ticketsOpen: $("tickets-open"), ticketsTitle: $("tickets-title"), tickets: $("tickets"),
    ticketsEmpty: $("tickets-empty"), ticketsAlert: $("tickets-alert"),
    ticketFilters: Array.from(document.querySelectorAll(".tfilter")),
    exportCsv: $("export-csv"), exportJson: $("export-json"),
    ticketPane: $("ticket-pane"), ticketEmpty: $("ticket-empty"), ticket: $("ticket"),
    ticketTitle: $("ticket-title"), ticketStatus: $("ticket-status"), ticketCreated: $("ticket-created"),
    ticketId: $("ticket-id"), ticketEmail: $("ticket-email"), ticketReply: $("ticket-reply"),
    ticketClose: $("ticket-close"), ticketConversation: $("ticket-conversation"),
    ticketAlert: $("ticket-alert"), ticketReasons: $("ticket-reasons"), ticketTranscript: $("ticket-transcript"),
  };

  // --- storage: the token lives in this tab only (sessionStorage) ----------------------
  function storage(kind) {
    const memory = new Map();
    return {
      get(key) {
        try { return window[kind].getItem(key); } catch (err) { return memory.get(key) || null; }
      },
      set(key, value) {
        if (value) memory.set(key, value); else memory.delete(key);
        try {
          if (value) window[kind].setItem(key, value); else window[kind].removeItem(key);
        } catch (err) { /* memory only */ }
      },
    };
  }
  const tab = storage("sessionStorage");
  const prefs = storage("localStorage");

  // --- state ---------------------------------------------------------------------------------
  const state = {
    token: null,
    agent: null,          // {id, name, email, role}
    expiryTimer: 0,
    socket: null,
    queue: new Map(),     // sessionId -> QueueItem
    filter: "all",
    presence: [],         // [{id, name, presence}]
    open: null,           // {id, conversation, ids: Set, loaded}
    reloadTimer: 0,
    typingOut: null,      // {sessionId, timer} while this agent is typing a reply
    customerTypingTimer: 0,
    alerts: prefs.get(KEYS.alerts) === "on",
    audio: null,
    busy: false,          // an action (claim, transfer, …) is in flight
    view: "conversations", // or "tickets"
    offers: new Map(),    // sessionId -> {sessionId, expires, team, node, busy}
    reminders: new Map(), // sessionId -> waitingSeconds (nobody claimed it in HANDOFF_TIMEOUT)
    tickets: [],          // summaries, newest first, for the current filter
    ticketFilter: "open",
    ticketsOpen: 0,
    ticket: null,         // the open ticket (full, with its transcript)
    ticketsSeq: 0,
  };

  // --- small helpers ---------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function announce(text) {
    els.announcer.appendChild(el("p", null, text));
    while (els.announcer.childElementCount > 3) els.announcer.firstElementChild.remove();
  }

  function isObject(value) { return value !== null && typeof value === "object"; }

  function parseTime(value) {
    const t = typeof value === "number" ? value : Date.parse(value);
    return Number.isFinite(t) ? t : null;
  }

  function clock(value) {
    const t = parseTime(value);
    return t === null ? "" : new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function timeNode(value) {
    const t = parseTime(value);
    const node = el("time", "entry__time", clock(value));
    if (t !== null) {
      node.dateTime = new Date(t).toISOString();
      node.title = new Date(t).toLocaleString();
    }
    return node;
  }

  /** "45 s", "3 min", "1 h 05 min" */
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return tr("console.dur_s", { n: s });
    const m = Math.floor(s / 60);
    if (m < 60) return tr("console.dur_min", { n: m });
    const h = Math.floor(m / 60);
    if (h < 48) return tr("console.dur_h", { h, m: String(m % 60).padStart(2, "0") });
    return tr("console.dur_days", { n: Math.floor(h / 24) });
  }

  function shortUser(userId) {
    const id = typeof userId === "string" ? userId : "";
    if (!id) return tr("console.customer");
    return tr("console.customer_id", { id: id.length > 14 ? id.slice(0, 6) + "…" + id.slice(-4) : id });
  }

  function percent(value) {
    const n = Number(value);
    return value !== null && value !== undefined && Number.isFinite(n)
      ? Math.round(Math.min(1, Math.max(0, n)) * 100) : null;
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

  const RULES = ["keyword", "low_confidence", "technical_error", "requested"];

  /** One short label per reason: "Keyword “urgent”", "Low confidence (0.31)". */
  function reasonLabels(reasons) {
    const out = [];
    for (const reason of Array.isArray(reasons) ? reasons : []) {
      if (!isObject(reason) || typeof reason.rule !== "string") continue;
      const name = RULES.includes(reason.rule) ? tr("console.rule_" + reason.rule) : reason.rule.replace(/_/g, " ");
      let detail = reason.detail === undefined || reason.detail === null || reason.detail === ""
        ? "" : String(reason.detail);
      if (reason.rule === "low_confidence") detail = detail.replace(/^confidence\s*/i, "");
      const label = !detail ? name : reason.rule === "keyword" ? name + " “" + detail + "”" : name + " (" + detail + ")";
      if (!out.includes(label)) out.push(label);
    }
    return out;
  }

  function priorityLabel(priority) {
    // The server gives 1 to urgent wording (urgent, emergency, …) and 0 otherwise; higher goes first.
    const p = Number(priority) || 0;
    return p > 0 ? { text: tr("console.urgent"), level: "urgent" } : { text: tr("console.normal"), level: "normal" };
  }

  const STATUS = ["active", "escalated", "assigned", "resolved"];

  function statusText(status) { return STATUS.includes(status) ? tr("console.status_" + status) : status; }

  function isMine(item) {
    return Boolean(item && item.assignedTo && state.agent && item.assignedTo.id === state.agent.id);
  }

  function isAdmin() { return Boolean(state.agent && state.agent.role === "admin"); }

  function holderText(item) {
    if (!item || item.status !== "assigned" || !item.assignedTo) return "";
    return isMine(item) ? tr("console.with_you") : tr("console.with_name", { name: item.assignedTo.name || tr("console.another_agent") });
  }

  // --- REST ---------------------------------------------------------------------------------------
  const { ApiError } = window.SupportApi;
  const api = window.SupportApi.client({
    token: () => state.token,
    expired: () => signedOut(tr("console.signin_expired_or_ended"), true),
    unreachable: () => tr("console.unreachable"),
  });
  function problemText(err, fallback) {
    return window.SupportApi.problemText(err, fallback || tr("console.went_wrong"));
  }

  // --- sign in and out ------------------------------------------------------------------------------
  function showSignin() {
    els.console.hidden = true;
    els.signin.hidden = false;
    document.title = tr("console.signin_doc_title");
  }

  function showConsole() {
    els.signin.hidden = true;
    els.console.hidden = false;
    document.title = tr("console.title");
  }

  function setSigninMessage(kind, text) {
    els.signinError.textContent = kind === "error" ? text : "";
    els.signinInfo.textContent = kind === "info" ? text : "";
    const invalid = kind === "error" && Boolean(text);
    els.email.toggleAttribute("aria-invalid", invalid);
    els.password.toggleAttribute("aria-invalid", invalid);
  }

  function retryText(header) {
    const seconds = Number(header);
    if (Number.isFinite(seconds) && seconds > 0) return duration(seconds * 1000);
    const date = Date.parse(header || "");
    return Number.isFinite(date) ? duration(date - Date.now()) : tr("console.few_minutes");
  }

  els.signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (els.signinSubmit.disabled) return;
    const email = els.email.value.trim();
    const password = els.password.value;
    if (!email || !password) {
      setSigninMessage("error", tr("console.enter_credentials"));
      (email ? els.password : els.email).focus();
      return;
    }
    els.signinSubmit.disabled = true;
    els.signinSubmit.textContent = tr("console.signing_in");
    setSigninMessage(null, "");
    try {
      const data = await api("POST", "/agents/login", { email, password }, { auth: false });
      if (typeof data.token !== "string" || !isObject(data.agent)) throw new ApiError(500, {});
      els.password.value = "";
      startSession(data.token, data.agent, data.expiresAt);
    } catch (err) {
      let text;
      if (err.status === 401) text = tr("console.wrong_credentials");
      else if (err.status === 429) text = tr("console.too_many", { wait: retryText(err.retryAfter) });
      else if (err.status === 400) text = tr("console.invalid_credentials");
      else if (err.status === 403) text = problemText(err, tr("console.disabled"));
      else text = problemText(err, tr("console.signin_failed"));
      setSigninMessage("error", text);
      els.password.focus();
      els.password.select();
    } finally {
      els.signinSubmit.disabled = false;
      els.signinSubmit.textContent = tr("console.sign_in");
    }
  });

  function startSession(token, agent, expiresAt) {
    state.token = token;
    state.agent = agent;
    tab.set(KEYS.token, token);
    tab.set(KEYS.agent, JSON.stringify(agent));
    tab.set(KEYS.expires, expiresAt ? String(expiresAt) : null);
    clearTimeout(state.expiryTimer);
    const expires = parseTime(expiresAt);
    if (expires !== null) {
      state.expiryTimer = setTimeout(
        () => signedOut(tr("console.signin_expired"), true),
        Math.min(MAX_TIMER_MS, Math.max(0, expires - Date.now())),
      );
    }
    showMe();
    els.presence.value = tab.get(KEYS.presence) === "away" ? "away" : "online";
    setSigninMessage(null, "");
    showConsole();
    closeConversation();
    renderQueue();
    renderPresence();
    connectSocket();
    loadQueue();
    showView("conversations", false);
    loadTickets();
    els.queueTitle.focus();
  }

  /** Back to the sign-in form; `expired` says why as an alert, otherwise a quiet status. */
  function signedOut(message, expired) {
    clearTimeout(state.expiryTimer);
    stopTyping();
    if (state.socket) {
      state.socket.removeAllListeners();
      state.socket.disconnect();
      state.socket = null;
    }
    state.token = null;
    state.agent = null;
    tab.set(KEYS.token, null);
    tab.set(KEYS.agent, null);
    tab.set(KEYS.expires, null);
    state.queue.clear();
    state.presence = [];
    for (const id of Array.from(state.offers.keys())) removeOffer(id);
    state.reminders.clear();
    state.tickets = [];
    state.ticket = null;
    closeConversation();
    if (els.resolveDialog.open) els.resolveDialog.close();
    showSignin();
    setSigninMessage(expired ? "error" : "info", message || "");
    els.email.focus();
  }

  els.signout.addEventListener("click", async () => {
    els.signout.disabled = true;
    try { await api("POST", "/agents/logout", {}); } catch (err) { /* signed out locally either way */ }
    els.signout.disabled = false;
    signedOut(tr("console.signed_out"), false);
  });

  function showMe() {
    const agent = state.agent || {};
    els.me.replaceChildren(el("span", "me__name", agent.name || agent.email || tr("console.agent")));
    if (agent.role === "admin") els.me.appendChild(el("span", "badge badge--role", tr("console.admin")));
  }

  // --- the live connection --------------------------------------------------------------------------
  function setConnection(name, label) {
    els.connection.dataset.state = name;
    els.connection.textContent = label;
  }

  function connectSocket() {
    if (typeof window.io !== "function") {
      setConnection("disconnected", tr("console.offline"));
      showConvAlert(tr("console.client_missing"));
      return;
    }
    const socket = window.io("/agents", {
      auth: { token: state.token },
      transports: ["websocket", "polling"],
      tryAllTransports: true,
    });
    state.socket = socket;
    setConnection("connecting", tr("console.connecting"));

    socket.on("connect", () => {
      setConnection("connected", tr("console.live"));
      if (els.presence.value === "away") socket.emit("set-presence", { presence: "away" });
      loadQueue(); // whatever changed while the connection was down
      if (state.open) {
        socket.emit("watch", { sessionId: state.open.id });
        scheduleReload(0);
      }
    });

    socket.on("disconnect", () => {
      hideCustomerTyping();
      if (state.socket !== socket) return;
      if (socket.active) setConnection("reconnecting", tr("console.reconnecting"));
      else refused(socket); // the server closed it: a sign-in that ended, or a restart
    });

    socket.on("connect_error", () => {
      if (state.socket !== socket) return;
      if (socket.active) setConnection("reconnecting", tr("console.reconnecting"));
      else refused(socket);
    });

    socket.on("hello", (data) => {
      if (!isObject(data)) return;
      if (isObject(data.agent) && data.agent.id) {
        state.agent = { ...state.agent, ...data.agent };
        tab.set(KEYS.agent, JSON.stringify(state.agent));
        showMe();
      }
      if (Array.isArray(data.agentsOnline)) setPresence(data.agentsOnline);
      else if (Array.isArray(data.agents)) setPresence(data.agents);
    });

    socket.on("presence-updated", (data) => {
      if (isObject(data) && Array.isArray(data.agents)) setPresence(data.agents);
    });

    socket.on("queue-updated", (data) => {
      if (!isObject(data) || !isObject(data.item) || typeof data.item.sessionId !== "string") return;
      const item = data.item;
      const known = state.queue.has(item.sessionId);
      if (data.action === "removed") state.queue.delete(item.sessionId);
      else upsertQueueItem(item);
      if (data.action === "removed" || item.status !== "escalated") {
        state.reminders.delete(item.sessionId);
        if (state.offers.has(item.sessionId)) offerTaken(item.sessionId, item);
      }
      if (data.action === "added" && !known) {
        const reasons = reasonLabels(item.reasons);
        announce(reasons.length
          ? tr("console.new_in_queue_why", { who: shortUser(item.userId), reasons: reasons.join(", ") })
          : tr("console.new_in_queue", { who: shortUser(item.userId) }));
      }
      renderQueue();
      if (state.open && state.open.id === item.sessionId && state.open.conversation) {
        state.open.conversation = { ...state.open.conversation, ...item };
        renderHeader();
        renderComposer();
      }
    });

    socket.on("escalation-needed", (data) => {
      if (!isObject(data)) return;
      const reasons = reasonLabels(data.reasons);
      const body = (reasons.length ? reasons.join(", ") + ": " : "")
        + (typeof data.message === "string" ? data.message : "");
      if (state.alerts) notify(tr("console.notify_waiting"), body, data.sessionId);
    });

    socket.on("conversation-updated", (data) => {
      if (!isObject(data) || typeof data.sessionId !== "string") return;
      if (data.status !== "escalated") {
        state.reminders.delete(data.sessionId);
        if (state.offers.has(data.sessionId)) offerTaken(data.sessionId, data);
      }
      if (isObject(data.item) && data.item.sessionId === data.sessionId) {
        if (data.status === "escalated" || data.status === "assigned") upsertQueueItem(data.item);
        else state.queue.delete(data.sessionId);
        renderQueue();
      } else if (data.status !== "escalated" && data.status !== "assigned") {
        if (state.queue.delete(data.sessionId)) renderQueue();
      }
      if (state.open && state.open.id === data.sessionId) {
        if (data.event === "rated" && isObject(data.csat)) {
          announce(tr("console.rated", { rating: data.csat.rating }));
        } else if (data.event === "assigned" && data.assignedTo && !isMine({ assignedTo: data.assignedTo })) {
          announce(tr("console.claimed_by", { name: data.assignedTo.name || tr("console.another_agent") }));
        }
        scheduleReload();
      }
    });

    socket.on("message-received", (data) => {
      if (!isObject(data) || typeof data.message !== "string") return;
      const entry = entryFromEvent(data);
      // The queue's preview follows the messages this agent is sent (held, watched, admin);
      // the server does not re-broadcast the queue item for each of them.
      const queued = state.queue.get(data.sessionId);
      if (queued) {
        queued.lastMessage = { role: entry.role, content: data.message.slice(0, 140), timestamp: data.timestamp };
        renderQueue();
      }
      if (!state.open || data.sessionId !== state.open.id) return;
      if (appendEntry(entry) && entry.role === "user") {
        askSuggestions(entry.id);
        hideCustomerTyping();
        announce(tr("console.customer_said", { message: data.message }));
      }
    });

    socket.on("suggestions", (data) => {
      if (!isObject(data) || !state.open || data.sessionId !== state.open.id) return;
      showSuggestions(data.suggestions);
    });

    socket.on("note-added", (data) => {
      if (!isObject(data) || !state.open || data.sessionId !== state.open.id || !isObject(data.note)) return;
      if (appendEntry(data.note) && !(state.agent && data.note.agentId === state.agent.id)) {
        announce(tr("console.note_from", { name: data.note.agentName || tr("console.an_agent") }));
      }
    });

    socket.on("offer", (data) => {
      if (isObject(data) && typeof data.sessionId === "string") showOffer(data);
    });

    socket.on("offer-withdrawn", (data) => {
      if (!isObject(data) || typeof data.sessionId !== "string" || !state.offers.has(data.sessionId)) return;
      removeOffer(data.sessionId);
      announce(data.reason === "timeout"
        ? tr("console.offer_timed_out")
        : tr("console.offer_withdrawn"));
      loadQueue(); // the queue item's offeree changed
    });

    socket.on("queue-reminder", (data) => {
      if (!isObject(data) || typeof data.sessionId !== "string") return;
      const seconds = Math.max(0, Number(data.waitingSeconds) || 0);
      state.reminders.set(data.sessionId, seconds);
      renderQueue();
      const item = state.queue.get(data.sessionId);
      const who = shortUser(item && item.userId);
      const text = tr("console.still_waiting_text", { who, wait: duration(seconds * 1000) });
      announce(text);
      if (state.alerts) notify(tr("console.notify_still_waiting"), text, data.sessionId);
    });

    socket.on("ticket-created", (data) => {
      if (isObject(data) && isObject(data.ticket)) ticketCreated(data.ticket);
    });

    socket.on("signed-out", () => {
      if (state.socket === socket) signedOut(tr("console.signin_ended"), true);
    });

    socket.on("typing", (data) => {
      if (!isObject(data) || !state.open || data.sessionId !== state.open.id) return;
      if (data.sender && data.sender !== "customer") return;
      if (data.isTyping) showCustomerTyping(); else hideCustomerTyping();
    });

    socket.on("error", (data) => {
      const message = isObject(data) && typeof data.message === "string" ? data.message : null;
      if (message) showConvAlert(message);
    });
  }

  /** The server refused or closed the connection. Usually the token is no longer valid:
   *  /agents/me says for sure (a 401 signs out); otherwise try again in a moment. */
  async function refused(socket) {
    setConnection("disconnected", tr("console.disconnected"));
    try {
      await api("GET", "/agents/me");
    } catch (err) {
      if (!state.token) return; // signed out by the 401
    }
    setTimeout(() => {
      if (state.socket === socket && !socket.connected) socket.connect();
    }, RECONNECT_REFUSED_MS);
  }

  function emit(event, payload) {
    if (state.socket && state.socket.connected) state.socket.emit(event, payload);
  }

  // --- presence ---------------------------------------------------------------------------------------
  function setPresence(list) {
    state.presence = list.filter((a) => isObject(a) && typeof a.id === "string")
      .map((a) => ({ id: a.id, name: a.name || a.email || tr("console.agent"), presence: a.presence === "away" ? "away" : "online" }));
    renderPresence();
  }

  function renderPresence() {
    const sorted = state.presence.slice().sort((a, b) =>
      (a.presence === b.presence ? 0 : a.presence === "online" ? -1 : 1) || a.name.localeCompare(b.name));
    els.online.replaceChildren(...sorted.map((agent) => {
      const li = el("li", "agent-row");
      li.dataset.presence = agent.presence;
      li.appendChild(el("span", "dot"));
      const mine = state.agent && agent.id === state.agent.id;
      li.appendChild(el("span", "agent-row__name", mine ? tr("console.you_suffix", { name: agent.name }) : agent.name));
      li.appendChild(el("span", "agent-row__state", agent.presence === "away" ? tr("console.presence_away") : tr("console.presence_online")));
      return li;
    }));
    if (!sorted.length) els.online.appendChild(el("li", "empty", tr("console.nobody_else")));
    els.onlineCount.textContent = String(state.presence.filter((a) => a.presence === "online").length);
    renderTransferOptions();
  }

  els.presence.addEventListener("change", () => {
    const value = els.presence.value === "away" ? "away" : "online";
    tab.set(KEYS.presence, value);
    emit("set-presence", { presence: value });
    announce(value === "away" ? tr("console.you_away") : tr("console.you_online"));
  });

  // --- alerts: a short sound and a browser notification on a new escalation ---------------------------
  function renderAlertsToggle() {
    els.alertsToggle.setAttribute("aria-pressed", state.alerts ? "true" : "false");
  }

  els.alertsToggle.addEventListener("click", () => {
    state.alerts = !state.alerts;
    prefs.set(KEYS.alerts, state.alerts ? "on" : null);
    renderAlertsToggle();
    if (state.alerts) {
      audioContext(); // created inside the click, so the browser lets it play later
      if ("Notification" in window && Notification.permission === "default") {
        try {
          const asked = Notification.requestPermission();
          if (asked && asked.catch) asked.catch(() => {});
        } catch (err) { /* old browsers */ }
      }
      announce(tr("console.alerts_on"));
    } else {
      announce(tr("console.alerts_off"));
    }
  });

  function audioContext() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!state.audio) {
      try { state.audio = new Context(); } catch (err) { return null; }
    }
    if (state.audio.state === "suspended") state.audio.resume().catch(() => {});
    return state.audio;
  }

  /** Two short rising tones, quiet. */
  function beep() {
    const ctx = audioContext();
    if (!ctx) return;
    const start = ctx.currentTime + 0.01;
    [660, 880].forEach((freq, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      const t = start + i * 0.16;
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.14);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.15);
    });
  }

  function notify(title, body, sessionId) {
    beep();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      const note = new Notification(title, { body: body.slice(0, 200), tag: "escalation-" + (sessionId || "") });
      note.onclick = () => {
        window.focus();
        if (typeof sessionId === "string") openConversation(sessionId);
        note.close();
      };
    } catch (err) { /* notifications need a service worker on some platforms */ }
  }

  // --- the queue ----------------------------------------------------------------------------------------
  function upsertQueueItem(item) {
    if (!isObject(item) || typeof item.sessionId !== "string") return;
    if (item.status !== "escalated" && item.status !== "assigned") {
      state.queue.delete(item.sessionId);
      return;
    }
    state.queue.set(item.sessionId, { ...(state.queue.get(item.sessionId) || {}), ...item });
  }

  async function loadQueue() {
    try {
      const data = await api("GET", "/agents/queue");
      state.queue.clear();
      for (const item of Array.isArray(data.conversations) ? data.conversations : []) upsertQueueItem(item);
      renderQueue();
    } catch (err) {
      if (state.token) showConvAlert(tr("console.queue_failed", { problem: problemText(err) }));
    }
  }

  function ordered() {
    return Array.from(state.queue.values()).sort((a, b) =>
      (Number(b.priority) || 0) - (Number(a.priority) || 0)
      || (parseTime(a.waitingSince) || 0) - (parseTime(b.waitingSince) || 0));
  }

  function visible(item) {
    switch (state.filter) {
      case "escalated": return item.status === "escalated";
      case "assigned": return item.status === "assigned";
      case "mine": return isMine(item);
      default: return true;
    }
  }

  function renderQueue() {
    const all = ordered();
    els.countEscalated.textContent = String(all.filter((i) => i.status === "escalated").length);
    els.countAssigned.textContent = String(all.filter((i) => i.status === "assigned").length);
    const shown = all.filter(visible);
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.sessionId : null;
    els.queue.replaceChildren(...shown.map(queueItemNode));
    if (focusedId) {
      const again = els.queue.querySelector('[data-session-id="' + CSS.escape(focusedId) + '"]');
      if (again) again.focus();
    }
    els.queueEmpty.hidden = shown.length > 0;
    els.queueEmpty.textContent = all.length && !shown.length
      ? tr("console.no_match")
      : tr("console.queue_empty");
    tickWaits();
  }

  function queueItemNode(item) {
    const li = el("li", "qitem");
    li.dataset.status = item.status;
    const button = el("button", "qitem__button");
    button.type = "button";
    button.dataset.sessionId = item.sessionId;
    if (state.open && state.open.id === item.sessionId) button.setAttribute("aria-current", "true");

    const top = el("span", "qitem__top");
    const priority = priorityLabel(item.priority);
    const badge = el("span", "badge badge--" + priority.level, priority.text);
    badge.title = tr("console.priority", { n: Number(item.priority) || 0 });
    top.appendChild(badge);
    top.appendChild(el("span", "badge badge--status-" + item.status, statusText(item.status)));
    const wait = el("span", "qitem__wait");
    wait.dataset.since = String(parseTime(item.waitingSince) || "");
    wait.dataset.status = item.status;
    top.appendChild(wait);
    button.appendChild(top);

    button.appendChild(el("span", "qitem__who", shortUser(item.userId)));
    const reasons = reasonLabels(item.reasons);
    if (reasons.length) button.appendChild(el("span", "qitem__reasons", reasons.join(" · ")));
    const last = item.lastMessage;
    const WHO = { user: "console.who_customer", agent: "console.who_agent", assistant: "console.who_bot" };
    if (isObject(last) && typeof last.content === "string" && WHO[last.role]) {
      // Messages only: a lifecycle line ("Handed over to the team") says nothing new here.
      button.appendChild(el("span", "qitem__last", tr(WHO[last.role]) + last.content));
    }
    const holder = holderText(item);
    if (holder) button.appendChild(el("span", "qitem__holder", holder.charAt(0).toUpperCase() + holder.slice(1)));
    if (typeof item.team === "string" && item.team) {
      top.insertBefore(el("span", "badge badge--team", tr("console.team", { team: item.team })), wait);
    }
    if (item.status === "escalated" && isObject(item.offeredTo) && item.offeredTo.id) {
      const mine = state.agent && item.offeredTo.id === state.agent.id;
      button.appendChild(el("span", "qitem__offer",
        mine ? tr("console.offered_to_you") : tr("console.offered_to", { name: item.offeredTo.name || tr("console.another_agent") })));
    }
    if (item.status === "escalated" && state.reminders.has(item.sessionId)) {
      li.dataset.reminder = "true";
      button.appendChild(el("span", "qitem__reminder",
        tr("console.still_waiting_after", { wait: duration(state.reminders.get(item.sessionId) * 1000) })));
    }
    button.addEventListener("click", () => openConversation(item.sessionId));
    li.appendChild(button);
    return li;
  }

  function tickWaits() {
    const now = Date.now();
    for (const node of els.queue.querySelectorAll(".qitem__wait")) {
      const since = Number(node.dataset.since);
      if (!since) { node.textContent = ""; continue; }
      const text = duration(now - since);
      node.textContent = node.dataset.status === "escalated" ? tr("console.waiting_for", { wait: text }) : tr("console.since_escalation", { wait: text });
    }
  }
  setInterval(tickWaits, 1000);

  for (const button of els.filters) {
    button.addEventListener("click", () => {
      state.filter = button.dataset.filter;
      for (const other of els.filters) other.setAttribute("aria-pressed", other === button ? "true" : "false");
      renderQueue();
    });
  }

  // --- one conversation -------------------------------------------------------------------------------------
  function closeConversation() {
    if (state.open) emit("unwatch", { sessionId: state.open.id });
    stopTyping();
    hideCustomerTyping();
    state.open = null;
    clearTimeout(state.reloadTimer);
    els.conv.hidden = true;
    els.paneEmpty.hidden = false;
    els.pane.setAttribute("aria-labelledby", "conv-title-empty");
    els.transcript.replaceChildren();
    els.reply.value = "";
    els.summary.replaceChildren();
    els.suggestions.replaceChildren();
    showConvAlert("");
  }

  async function openConversation(sessionId) {
    if (state.open && state.open.id === sessionId) {
      els.reply.focus();
      return;
    }
    if (state.open) {
      emit("unwatch", { sessionId: state.open.id });
      stopTyping();
      hideCustomerTyping();
    }
    // seq/shown: reloads may answer out of order; inflight/recent: what arrived live while a
    // reload was on its way, which its (older) answer may not contain yet.
    state.open = {
      id: sessionId, conversation: null, ids: new Set(), loaded: false,
      seq: 0, shown: 0, inflight: 0, recent: [],
      suggestions: [], used: null, suggestedFor: null,
    };
    els.summary.replaceChildren();
    els.suggestions.replaceChildren();
    emit("watch", { sessionId });
    els.reply.value = "";
    showConvAlert("");
    els.paneEmpty.hidden = true;
    els.conv.hidden = false;
    els.pane.setAttribute("aria-labelledby", "conv-title");
    els.convTitle.textContent = shortUser(state.queue.get(sessionId) && state.queue.get(sessionId).userId);
    els.convSession.textContent = sessionId;
    els.transcript.replaceChildren(el("li", "entry entry--system", tr("console.loading")));
    els.reasons.replaceChildren();
    els.csat.replaceChildren();
    renderQueue();
    renderActions();
    renderComposer();
    els.convTitle.focus(); // from the list to the detail: Tab goes on to the actions
    await reloadOpen(true);
  }

  function scheduleReload(delay) {
    clearTimeout(state.reloadTimer);
    state.reloadTimer = setTimeout(() => reloadOpen(false), delay === undefined ? 120 : delay);
  }

  async function reloadOpen(first) {
    const open = state.open;
    if (!open) return;
    const seq = ++open.seq;
    open.inflight += 1;
    let data;
    try {
      data = await api("GET", "/agents/conversations/" + encodeURIComponent(open.id));
    } catch (err) {
      open.inflight -= 1;
      if (state.open !== open) return;
      if (err.status === 404) {
        state.queue.delete(open.id);
        renderQueue();
        els.transcript.replaceChildren(el("li", "entry entry--system", tr("console.conversation_gone")));
        open.conversation = null;
        renderActions();
        renderComposer();
      } else if (state.token) {
        showConvAlert(tr("console.conversation_failed", { problem: problemText(err) }));
      }
      return;
    }
    open.inflight -= 1;
    if (state.open !== open) return; // another one was opened meanwhile
    if (seq < open.shown) return; // a newer answer is on screen already
    open.shown = seq;
    open.conversation = isObject(data.conversation) ? data.conversation : { sessionId: open.id };
    open.loaded = true;
    if (open.conversation.status === "escalated" || open.conversation.status === "assigned") {
      upsertQueueItem(open.conversation);
      renderQueue();
    }
    renderHeader();
    window.AgentAssist.renderSummary(els.summary, data.summary);
    renderTranscript(Array.isArray(data.transcript) ? data.transcript : [], first);
    const customer = (Array.isArray(data.transcript) ? data.transcript : [])
      .filter((e) => isObject(e) && e.role === "user").pop();
    if (customer) askSuggestions(customer.id);
    for (const entry of open.recent) {
      if (!entry.id || !open.ids.has(entry.id)) addEntryNode(entry);
    }
    if (!open.inflight) open.recent = [];
    renderComposer();
  }

  function renderHeader() {
    const conv = state.open && state.open.conversation;
    if (!conv) return;
    els.convTitle.textContent = shortUser(conv.userId);
    els.convSession.textContent = conv.sessionId || state.open.id;
    els.convStatus.textContent = statusText(conv.status) || "";
    els.convStatus.className = "badge badge--status-" + (conv.status || "unknown");
    const holder = holderText(conv);
    const waited = conv.status === "escalated" && parseTime(conv.waitingSince)
      ? tr("console.waiting_since", { time: clock(conv.waitingSince) }) : "";
    const extra = [];
    if (typeof conv.team === "string" && conv.team) extra.push(tr("console.team", { team: conv.team }));
    if (conv.status === "escalated" && isObject(conv.offeredTo) && conv.offeredTo.id) {
      extra.push(state.agent && conv.offeredTo.id === state.agent.id
        ? tr("console.offered_to_you_lc") : tr("console.offered_to_lc", { name: conv.offeredTo.name || tr("console.another_agent") }));
    }
    els.convHolder.textContent = [holder || waited, ...extra].filter(Boolean).join(" · ");

    const reasons = reasonLabels(conv.reasons);
    els.reasons.replaceChildren();
    if (reasons.length && (conv.status === "escalated" || conv.status === "assigned")) {
      els.reasons.appendChild(el("h3", "reasons__title", tr("console.escalated_because")));
      const list = el("ul", "chips");
      for (const label of reasons) list.appendChild(el("li", "chip", label));
      els.reasons.appendChild(list);
    }

    els.csat.replaceChildren();
    const ratings = Array.isArray(conv.csat) ? conv.csat.filter(isObject) : [];
    if (ratings.length) {
      els.csat.appendChild(el("h3", "csat__title", tr("console.csat_label")));
      const list = el("ul", "csat__list");
      for (const r of ratings) {
        const rating = Math.max(0, Math.min(5, Math.round(Number(r.rating) || 0)));
        const li = el("li", "csat__item");
        const stars = el("span", "stars", "★".repeat(rating) + "☆".repeat(5 - rating));
        stars.setAttribute("aria-hidden", "true");
        li.appendChild(stars);
        li.appendChild(el("strong", "csat__score", tr("console.rating_of", { rating })));
        if (ratings.length > 1 && r.episode) li.appendChild(el("span", "muted", "episode " + r.episode));
        if (typeof r.comment === "string" && r.comment) li.appendChild(el("q", "csat__comment", r.comment));
        list.appendChild(li);
      }
      els.csat.appendChild(list);
    }
    renderActions();
  }

  function canAct(conv) {
    return Boolean(conv && conv.status === "assigned" && (isMine(conv) || isAdmin()));
  }

  function renderActions() {
    const conv = state.open && state.open.conversation;
    const busy = state.busy || !conv;
    els.claim.disabled = busy || conv.status !== "escalated";
    els.handback.disabled = busy || !canAct(conv);
    els.resolve.disabled = busy || !(canAct(conv) || (isAdmin() && conv.status === "escalated"));
    els.transferTo.disabled = busy || !canAct(conv);
    els.transfer.disabled = busy || !canAct(conv);
    renderTransferOptions();
  }

  function renderTransferOptions() {
    const current = els.transferTo.value;
    const options = [el("option", null, tr("console.back_to_queue"))];
    options[0].value = "";
    const conv = state.open && state.open.conversation;
    const holderId = conv && conv.assignedTo ? conv.assignedTo.id : null;
    for (const agent of state.presence) {
      if (agent.id === holderId || agent.presence !== "online") continue;
      if (state.agent && agent.id === state.agent.id && !isAdmin()) continue;
      const option = el("option", null, agent.name);
      option.value = agent.id;
      options.push(option);
    }
    els.transferTo.replaceChildren(...options);
    if (options.some((o) => o.value === current)) els.transferTo.value = current;
  }

  function showConvAlert(text) {
    els.convAlert.replaceChildren();
    if (text) els.convAlert.appendChild(el("p", null, text));
  }

  // --- the transcript ------------------------------------------------------------------------------------------
  function nearBottom() {
    const t = els.transcript;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  }

  function renderTranscript(entries, first) {
    const stick = first || nearBottom();
    const top = els.transcript.scrollTop;
    state.open.ids = new Set();
    els.transcript.replaceChildren();
    for (const entry of entries) {
      if (!isObject(entry)) continue;
      if (entry.id) state.open.ids.add(entry.id);
      els.transcript.appendChild(entryNode(entry));
    }
    if (!els.transcript.childElementCount) {
      els.transcript.appendChild(el("li", "entry entry--system", tr("console.no_messages_yet")));
    }
    els.transcript.scrollTop = stick ? els.transcript.scrollHeight : top;
  }

  /** Adds an entry unless it is already shown; true when added. */
  function appendEntry(entry) {
    const open = state.open;
    if (!open) return false;
    if (open.inflight) open.recent.push(entry); // kept if the reload on its way predates it
    if (!open.loaded) return false;
    if (entry.id && open.ids.has(entry.id)) return false;
    addEntryNode(entry);
    return true;
  }

  function addEntryNode(entry) {
    if (entry.id) state.open.ids.add(entry.id);
    const stick = nearBottom() || entry.role === "agent" || entry.role === "note";
    els.transcript.appendChild(entryNode(entry));
    if (stick) els.transcript.scrollTop = els.transcript.scrollHeight;
  }

  function entryFromEvent(data) {
    const role = data.sender === "customer" || (data.isBot === false && data.sender !== "agent") ? "user"
      : data.sender === "agent" ? "agent" : "assistant";
    return {
      id: data.messageId, role, content: data.message, timestamp: data.timestamp,
      agentName: data.agentName, agentId: data.agentId, provider: data.provider,
      confidence: data.confidence, sources: data.sources, notice: data.notice,
    };
  }

  const EVENTS = [
    "escalated", "assigned", "transferred", "released", "handed_back", "resolved", "reopened", "rated", "ticket_created",
  ];

  function entryNode(entry) {
    const role = typeof entry.role === "string" ? entry.role : "system";
    const li = el("li", "entry");
    if (entry.id) li.dataset.id = entry.id;
    const head = el("p", "entry__head");
    const text = el("p", "entry__text", typeof entry.content === "string" ? entry.content : "");

    if (role === "system") {
      li.classList.add("entry--system");
      const event = EVENTS.includes(entry.event) ? tr("console.event_" + entry.event) : tr("console.status_changed");
      const fallback = (isObject(entry.by) && entry.by.name ? tr("console.by_name", { event, name: entry.by.name }) : event)
        + (typeof entry.reason === "string" && entry.reason ? ": " + entry.reason : "");
      li.appendChild(el("span", "entry__text", entry.content || fallback));
      li.appendChild(document.createTextNode(" · "));
      li.appendChild(timeNode(entry.timestamp));
      return li;
    }

    let who;
    if (role === "user") {
      li.classList.add("entry--customer");
      who = tr("console.customer");
    } else if (role === "agent") {
      li.classList.add("entry--agent");
      const mine = state.agent && entry.agentId === state.agent.id;
      who = mine ? tr("console.you_suffix", { name: entry.agentName || tr("console.agent") }) : entry.agentName || tr("console.agent");
    } else if (role === "note") {
      li.classList.add("entry--note");
      who = tr("console.note_by", { name: entry.agentName || tr("console.agent") });
    } else {
      li.classList.add("entry--bot");
      who = entry.notice ? tr("console.bot_notice") : tr("console.bot");
    }
    head.appendChild(el("span", "entry__who", who));
    if (role === "note") head.appendChild(el("span", "badge badge--internal", tr("console.not_shown")));
    head.appendChild(timeNode(entry.timestamp));
    li.appendChild(head);
    li.appendChild(text);
    if (role === "agent" && entry.id && state.agent && entry.agentId === state.agent.id) {
      const propose = el("button", "button button--ghost entry__propose", tr("console.propose"));
      propose.type = "button";
      propose.dataset.id = entry.id;
      li.appendChild(propose);
    }

    if (role === "assistant") {
      const parts = [];
      if (entry.provider && entry.provider !== "none") parts.push(String(entry.provider));
      const pct = percent(entry.confidence);
      if (pct !== null && !entry.notice) parts.push("confidence " + pct + "%");
      if (parts.length) li.appendChild(el("p", "entry__meta", parts.join(" · ")));
      const sources = Array.isArray(entry.sources) ? entry.sources.filter(isObject) : [];
      if (sources.length) {
        const list = el("ul", "entry__sources");
        list.setAttribute("aria-label", tr("console.sources"));
        for (const source of sources) {
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
      const reasons = reasonLabels(entry.escalation);
      if (reasons.length) li.appendChild(el("p", "entry__escalation", tr("console.escalated_list", { reasons: reasons.join(", ") })));
    }
    return li;
  }

  // --- agent assist: reply suggestions (assist.js renders them) ----------------------------------------------
  /** Ask for suggestions once per customer message, while this agent may reply. */
  function askSuggestions(messageId) {
    const open = state.open;
    if (!open || !canAct(open.conversation) || open.conversation.status !== "assigned") return;
    if (!messageId || open.suggestedFor === messageId) return;
    open.suggestedFor = messageId;
    emit("suggest", { sessionId: open.id });
  }

  function showSuggestions(list) {
    const open = state.open;
    open.suggestions = Array.isArray(list) ? list : [];
    window.AgentAssist.renderSuggestions(els.suggestions, open.suggestions, useSuggestion);
  }

  /** Put a suggestion in the reply box, to edit and send; remembered for the reply. */
  function useSuggestion(index) {
    const open = state.open;
    const suggestion = open && open.suggestions[index];
    if (!suggestion || !canAct(open.conversation)) return;
    open.used = suggestion;
    const radio = els.composer.querySelector('input[name="mode"][value="reply"]');
    if (radio) radio.checked = true;
    els.reply.value = suggestion.text;
    renderComposer();
    els.reply.focus();
    announce(tr("console.suggestion_inserted"));
  }

  /** The reply's body: the text, and the suggestion it came from (if still in use). */
  function replyBody(open, text) {
    const used = open.used;
    if (!used || !used.id) return { message: text };
    return { message: text, suggestion: { id: used.id, origin: used.origin, edited: text !== used.text.trim() } };
  }

  els.transcript.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest(".entry__propose");
    const open = state.open;
    if (!button || !open) return;
    button.disabled = true;
    try {
      await api("POST", "/agents/conversations/" + encodeURIComponent(open.id) + "/proposals",
        { messageId: button.dataset.id });
      button.textContent = tr("console.proposed");
      announce(tr("console.proposed_announce"));
    } catch (err) {
      button.disabled = false;
      showConvAlert(tr("console.proposal_failed", { problem: problemText(err) }));
    }
  });

  // --- typing -------------------------------------------------------------------------------------------------
  function showCustomerTyping() {
    clearTimeout(state.customerTypingTimer);
    if (!els.customerTyping.childElementCount) {
      const dots = el("span", "dots");
      dots.setAttribute("aria-hidden", "true");
      els.customerTyping.replaceChildren(dots, document.createTextNode(tr("console.customer_typing")));
    }
    state.customerTypingTimer = setTimeout(hideCustomerTyping, CUSTOMER_TYPING_MAX_MS);
  }

  function hideCustomerTyping() {
    clearTimeout(state.customerTypingTimer);
    els.customerTyping.replaceChildren();
  }

  function mode() {
    const checked = els.composer.querySelector('input[name="mode"]:checked');
    return checked ? checked.value : "reply";
  }

  function noteTyping() {
    const open = state.open;
    if (!open || mode() !== "reply" || !canAct(open.conversation) || !els.reply.value.trim()) {
      stopTyping();
      return;
    }
    if (!state.typingOut || state.typingOut.sessionId !== open.id) {
      stopTyping();
      state.typingOut = { sessionId: open.id, timer: 0 };
      emit("typing", { sessionId: open.id, isTyping: true });
    }
    clearTimeout(state.typingOut.timer);
    state.typingOut.timer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }

  function stopTyping() {
    const out = state.typingOut;
    if (!out) return;
    clearTimeout(out.timer);
    state.typingOut = null;
    emit("typing", { sessionId: out.sessionId, isTyping: false });
  }

  // --- the composer: replies and notes -------------------------------------------------------------------------
  function renderComposer() {
    const conv = state.open && state.open.conversation;
    const note = mode() === "note";
    const allowed = Boolean(conv) && (note || canAct(conv));
    els.composer.classList.toggle("composer--note", note);
    els.replyLabel.textContent = note ? tr("console.mode_note") : tr("console.your_reply");
    els.reply.placeholder = note ? tr("console.note_placeholder") : tr("console.reply_placeholder");
    els.send.textContent = note ? tr("console.add_note") : tr("console.send");
    els.send.disabled = state.busy || !allowed || !els.reply.value.trim();
    let hint = "";
    if (!conv) hint = "";
    else if (note) hint = tr("console.hint_note");
    else if (conv.status === "escalated") hint = tr("console.hint_claim");
    else if (conv.status === "assigned" && !canAct(conv)) hint = tr("console.hint_only", { name: conv.assignedTo && conv.assignedTo.name || tr("console.the_holder") });
    else if (conv.status === "active") hint = tr("console.hint_bot");
    else if (conv.status === "resolved") hint = tr("console.hint_resolved");
    else hint = tr("console.hint_keys");
    els.hint.textContent = hint;
  }

  els.composer.addEventListener("change", (event) => {
    if (event.target && event.target.name === "mode") {
      stopTyping();
      renderComposer();
    }
  });

  els.reply.addEventListener("input", () => {
    renderComposer();
    noteTyping();
  });

  els.reply.addEventListener("blur", () => stopTyping());

  els.reply.addEventListener("keydown", (event) => {
    const digit = /^Digit([1-3])$/.exec(event.code || "");
    if (event.altKey && digit && state.open && state.open.suggestions[digit[1] - 1]) {
      event.preventDefault();
      useSuggestion(digit[1] - 1);
      return;
    }
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    els.composer.requestSubmit();
  });

  els.composer.addEventListener("submit", async (event) => {
    event.preventDefault();
    const open = state.open;
    const text = els.reply.value.trim();
    if (!open || !text || els.send.disabled) return;
    const note = mode() === "note";
    stopTyping();
    setBusy(true);
    try {
      const path = "/agents/conversations/" + encodeURIComponent(open.id) + (note ? "/notes" : "/messages");
      const data = await api("POST", path, note ? { note: text } : replyBody(open, text));
      if (!note) {
        open.used = null;
        open.suggestions = [];
      }
      if (state.open !== open) return;
      if (!note) els.suggestions.replaceChildren();
      const entry = note ? data.note : data.message;
      if (isObject(entry)) appendEntry(entry);
      else scheduleReload(0);
      if (els.reply.value.trim() === text) els.reply.value = "";
      showConvAlert("");
      announce(note ? tr("console.note_added") : tr("console.reply_sent"));
    } catch (err) {
      if (!state.token) return;
      if (err.status === 403) showConvAlert(tr("console.only_holder_reply"));
      else if (err.status === 409) showConvAlert(refusal(err));
      else showConvAlert(tr(note ? "console.note_failed" : "console.reply_failed", { problem: problemText(err) }));
      scheduleReload(0);
    } finally {
      setBusy(false);
      els.reply.focus();
    }
  });

  function setBusy(on) {
    state.busy = on;
    renderActions();
    renderComposer();
  }

  // --- actions ---------------------------------------------------------------------------------------------------
  /** The words for a 409: who holds the conversation or what state it is in. */
  function refusal(err) {
    const p = err.problem || {};
    const holder = isObject(p.holder) ? p.holder : null;
    if (holder && (!state.agent || holder.id !== state.agent.id)) {
      return tr("console.already_claimed", { name: holder.name || tr("console.another_agent") });
    }
    if (holder) return tr("console.already_yours");
    if (typeof p.currentStatus === "string") {
      return tr("console.not_possible_status", { status: String(statusText(p.currentStatus)).toLowerCase() });
    }
    return problemText(err, tr("console.not_possible"));
  }

  async function act(action, body, done) {
    const open = state.open;
    if (!open || state.busy) return;
    const focused = document.activeElement;
    setBusy(true);
    showConvAlert("");
    try {
      const data = await api("POST", "/agents/conversations/" + encodeURIComponent(open.id) + "/" + action, body || {});
      if (state.open === open && isObject(data.conversation)) {
        // The step's answer is newer than any reload already on its way: those are dropped.
        open.shown = ++open.seq;
        open.conversation = { ...open.conversation, ...data.conversation };
        upsertQueueItem(data.conversation);
        if (data.conversation.status !== "escalated" && data.conversation.status !== "assigned") {
          state.queue.delete(open.id);
        }
        renderQueue();
        renderHeader();
      }
      if (done) announce(done);
    } catch (err) {
      if (!state.token) return;
      showConvAlert(err.status === 409 ? refusal(err) : err.status === 403
        ? tr("console.only_holder_or_admin")
        : problemText(err));
    } finally {
      setBusy(false);
      if (state.open === open) scheduleReload(0);
      // The pressed button was disabled while busy, which drops the focus: put it back, or
      // on the transcript when that action is no longer possible.
      if (!document.activeElement || document.activeElement === document.body) {
        if (focused && focused.isConnected && !focused.disabled && focused !== document.body) focused.focus();
        else if (state.open === open) els.transcript.focus();
      }
    }
  }

  els.claim.addEventListener("click", async () => {
    await act("claim", {}, tr("console.you_claimed"));
    if (canAct(state.open && state.open.conversation)) els.reply.focus();
  });

  els.handback.addEventListener("click", () => act("handback", {}, tr("console.handed_back")));

  els.transferForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (els.transfer.disabled) return;
    const agentId = els.transferTo.value;
    const option = els.transferTo.selectedOptions[0];
    act("transfer", agentId ? { agentId } : {},
      agentId ? tr("console.transferred_to", { name: option ? option.textContent : tr("console.another_agent") }) : tr("console.back_in_queue"));
  });

  els.resolve.addEventListener("click", () => {
    els.resolveNote.value = "";
    if (typeof els.resolveDialog.showModal === "function") els.resolveDialog.showModal();
    else act("resolve", {}, tr("console.resolved"));
  });

  els.resolveCancel.addEventListener("click", () => els.resolveDialog.close());

  els.resolveForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const note = els.resolveNote.value.trim();
    els.resolveDialog.close();
    await act("resolve", note ? { note } : {}, tr("console.resolved_rating"));
    els.transcript.focus();
  });

  // --- routing offers: one conversation offered to this agent, accept or decline ---------------------------
  function urgentAnnounce(text) {
    els.urgent.replaceChildren(el("p", null, text));
  }

  function secondsLeft(offer) {
    return Math.max(0, Math.ceil((offer.expires - Date.now()) / 1000));
  }

  function showOffer(data) {
    const sessionId = data.sessionId;
    const timeout = Math.max(1, Number(data.timeoutSeconds) || 30);
    const expires = parseTime(data.expiresAt) || Date.now() + timeout * 1000;
    const team = typeof data.team === "string" && data.team ? data.team : null;
    removeOffer(sessionId);
    const offer = { sessionId, expires, team, busy: false, node: null };
    const safe = sessionId.replace(/[^A-Za-z0-9_-]/g, "");
    const card = el("article", "offer");
    card.dataset.sessionId = sessionId;
    card.setAttribute("aria-labelledby", "offer-title-" + safe);
    const title = el("h2", null, tr("console.offer_title"));
    title.id = "offer-title-" + safe;
    card.appendChild(title);
    const item = state.queue.get(sessionId);
    const details = [shortUser(item && item.userId)];
    if (team) details.push(tr("console.team", { team }));
    const reasons = reasonLabels(item && item.reasons);
    if (reasons.length) details.push(reasons.join(", "));
    card.appendChild(el("p", "offer__detail", details.join(" · ")));
    const timer = el("p", "offer__timer");
    timer.setAttribute("role", "timer");
    card.appendChild(timer);
    const buttons = el("div", "offer__buttons");
    const accept = el("button", "button offer__accept", tr("console.accept"));
    accept.type = "button";
    const decline = el("button", "button button--secondary offer__decline", tr("console.decline"));
    decline.type = "button";
    buttons.append(accept, decline);
    card.appendChild(buttons);
    const error = el("p", "offer__error");
    error.setAttribute("role", "alert");
    card.appendChild(error);
    accept.addEventListener("click", () => acceptOffer(offer));
    decline.addEventListener("click", () => declineOffer(offer));
    offer.node = card;
    offer.timer = timer;
    offer.error = error;
    state.offers.set(sessionId, offer);
    els.offers.appendChild(card);
    els.offers.hidden = false;
    tickOffers();
    const text = team ? tr("console.offer_text_team", { team, n: secondsLeft(offer) })
      : tr("console.offer_text", { n: secondsLeft(offer) });
    urgentAnnounce(text);
    if (state.alerts) notify(tr("console.offer_title"), text, sessionId);
    loadQueue(); // the queue item now names this agent as the offeree
  }

  function removeOffer(sessionId) {
    const offer = state.offers.get(sessionId);
    if (!offer) return;
    state.offers.delete(sessionId);
    const hadFocus = offer.node && offer.node.contains(document.activeElement);
    if (offer.node) offer.node.remove();
    els.offers.hidden = state.offers.size === 0;
    if (hadFocus) (state.view === "tickets" ? els.ticketsTitle : els.queueTitle).focus();
  }

  /** The conversation moved on (claimed, resolved, …) while offered here. */
  function offerTaken(sessionId, data) {
    const offer = state.offers.get(sessionId);
    if (!offer || offer.busy) return;
    removeOffer(sessionId);
    const by = isObject(data.assignedTo) && data.assignedTo.name ? data.assignedTo.name : null;
    if (!(by && state.agent && isObject(data.assignedTo) && data.assignedTo.id === state.agent.id)) {
      announce(by ? tr("console.offer_claimed_by", { name: by }) : tr("console.offer_gone"));
    }
  }

  function tickOffers() {
    for (const offer of state.offers.values()) {
      const left = secondsLeft(offer);
      offer.timer.textContent = left > 0 ? tr("console.expires_in", { n: left }) : tr("console.expired");
      if (left <= 0 && !offer.busy) {
        // The server moves it on (offer-withdrawn); don't leave a dead offer on the screen.
        setTimeout(() => { if (state.offers.get(offer.sessionId) === offer && !offer.busy) removeOffer(offer.sessionId); }, 3000);
      }
    }
  }
  setInterval(tickOffers, 1000);

  function offerFailed(offer, text) {
    offer.busy = false;
    offer.error.textContent = text;
    for (const button of offer.node.querySelectorAll("button")) button.disabled = false;
    const accept = offer.node.querySelector(".offer__accept");
    if (accept) accept.remove();
    const decline = offer.node.querySelector(".offer__decline");
    if (decline) {
      decline.textContent = tr("console.dismiss");
      decline.replaceWith(decline.cloneNode(true));
      const fresh = offer.node.querySelector(".offer__decline");
      fresh.addEventListener("click", () => removeOffer(offer.sessionId));
      fresh.focus();
    }
  }

  async function acceptOffer(offer) {
    if (offer.busy) return;
    offer.busy = true;
    for (const button of offer.node.querySelectorAll("button")) button.disabled = true;
    try {
      const data = await api("POST", "/agents/conversations/" + encodeURIComponent(offer.sessionId) + "/claim", {});
      removeOffer(offer.sessionId);
      if (isObject(data.conversation)) upsertQueueItem(data.conversation);
      renderQueue();
      announce(tr("console.you_accepted"));
      showView("conversations", false);
      if (state.open && state.open.id === offer.sessionId) await reloadOpen(false);
      else await openConversation(offer.sessionId);
      if (canAct(state.open && state.open.conversation)) els.reply.focus();
    } catch (err) {
      if (!state.token) return;
      offerFailed(offer, err.status === 409 ? refusal(err) : problemText(err, tr("console.claim_failed")));
    }
  }

  async function declineOffer(offer) {
    if (offer.busy) return;
    offer.busy = true;
    for (const button of offer.node.querySelectorAll("button")) button.disabled = true;
    try {
      await api("POST", "/agents/conversations/" + encodeURIComponent(offer.sessionId) + "/decline", {});
      removeOffer(offer.sessionId);
      announce(tr("console.declined"));
      loadQueue();
    } catch (err) {
      if (!state.token) return;
      if (err.status === 403 || err.status === 409 || err.status === 404) {
        removeOffer(offer.sessionId); // no longer ours to decline
        announce(tr("console.offer_ended"));
      } else {
        offer.busy = false;
        for (const button of offer.node.querySelectorAll("button")) button.disabled = false;
        offer.error.textContent = problemText(err, tr("console.decline_failed"));
      }
    }
  }

  // --- views: the live conversations or the tickets --------------------------------------------------------
  function showView(view, focus) {
    state.view = view === "tickets" ? "tickets" : "conversations";
    const tickets = state.view === "tickets";
    els.conversationsView.hidden = tickets;
    els.ticketsView.hidden = !tickets;
    els.viewConversations.setAttribute("aria-pressed", tickets ? "false" : "true");
    els.viewTickets.setAttribute("aria-pressed", tickets ? "true" : "false");
    if (tickets) loadTickets();
    if (focus) (tickets ? els.ticketsTitle : els.queueTitle).focus();
  }

  els.viewConversations.addEventListener("click", () => showView("conversations", true));
  els.viewTickets.addEventListener("click", () => showView("tickets", true));

  // --- tickets -----------------------------------------------------------------------------------------------
  function setTicketsOpen(n) {
    state.ticketsOpen = Math.max(0, n);
    els.ticketsOpen.textContent = String(state.ticketsOpen);
  }

  function dateTime(value) {
    const t = parseTime(value);
    return t === null ? "" : new Date(t).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  async function loadTickets() {
    const seq = ++state.ticketsSeq;
    const filter = state.ticketFilter;
    try {
      const query = filter === "all" ? "" : "?status=" + encodeURIComponent(filter);
      const data = await api("GET", "/agents/tickets" + query);
      const open = filter === "open" ? null : await api("GET", "/agents/tickets?status=open");
      if (seq !== state.ticketsSeq) return;
      state.tickets = (Array.isArray(data.tickets) ? data.tickets : []).filter((t) => isObject(t) && typeof t.id === "string");
      sortTickets();
      setTicketsOpen(open ? (Array.isArray(open.tickets) ? open.tickets.length : 0) : state.tickets.length);
      els.ticketsAlert.textContent = "";
      renderTickets();
    } catch (err) {
      if (state.token && seq === state.ticketsSeq) els.ticketsAlert.textContent = tr("console.tickets_failed", { problem: problemText(err) });
    }
  }

  function sortTickets() {
    state.tickets.sort((a, b) => (parseTime(b.createdAt) || 0) - (parseTime(a.createdAt) || 0));
  }

  function ticketVisible(ticket) {
    return state.ticketFilter === "all" || ticket.status === state.ticketFilter;
  }

  function renderTickets() {
    const shown = state.tickets.filter(ticketVisible);
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.ticketId : null;
    els.tickets.replaceChildren(...shown.map(ticketNode));
    if (focusedId) {
      const again = els.tickets.querySelector('[data-ticket-id="' + CSS.escape(focusedId) + '"]');
      if (again) again.focus();
    }
    els.ticketsEmpty.hidden = shown.length > 0;
    els.ticketsEmpty.textContent = state.ticketFilter === "closed" ? tr("console.no_answered")
      : tr("console.tickets_empty");
  }

  function ticketNode(ticket) {
    const li = el("li", "qitem tk");
    li.dataset.status = ticket.status;
    const button = el("button", "qitem__button tk__button");
    button.type = "button";
    button.dataset.ticketId = ticket.id;
    if (state.ticket && state.ticket.id === ticket.id) button.setAttribute("aria-current", "true");
    const top = el("span", "qitem__top");
    top.appendChild(el("span", "badge badge--ticket-" + ticket.status, ticket.status === "closed" ? tr("console.ticket_answered") : tr("console.ticket_open")));
    const when = el("span", "qitem__wait", dateTime(ticket.createdAt));
    top.appendChild(when);
    button.appendChild(top);
    button.appendChild(el("span", "tk__email", ticket.email || tr("console.no_address")));
    const reasons = reasonLabels(ticket.reasons);
    if (reasons.length) button.appendChild(el("span", "qitem__reasons", reasons.join(" · ")));
    if (typeof ticket.lastMessage === "string" && ticket.lastMessage) {
      button.appendChild(el("span", "qitem__last", tr("console.who_customer") + ticket.lastMessage));
    }
    button.addEventListener("click", () => openTicket(ticket.id));
    li.appendChild(button);
    return li;
  }

  function ticketCreated(ticket) {
    if (typeof ticket.id !== "string") return;
    const known = state.tickets.some((t) => t.id === ticket.id);
    if (!known) {
      state.tickets.push(ticket);
      sortTickets();
      if (ticket.status !== "closed") setTicketsOpen(state.ticketsOpen + 1);
    }
    renderTickets();
    const text = tr("console.new_ticket", { email: ticket.email || tr("console.a_customer") });
    announce(text);
    if (state.alerts) notify(tr("console.notify_new_ticket"), text, ticket.sessionId);
  }

  for (const button of els.ticketFilters) {
    button.addEventListener("click", () => {
      state.ticketFilter = button.dataset.status;
      for (const other of els.ticketFilters) other.setAttribute("aria-pressed", other === button ? "true" : "false");
      loadTickets();
    });
  }

  function mailto(ticket) {
    const subject = tr("console.mail_subject");
    const quote = typeof ticket.lastMessage === "string" && ticket.lastMessage
      ? "\n\n> " + ticket.lastMessage.replace(/\n/g, "\n> ") : "";
    return "mailto:" + encodeURIComponent(ticket.email || "").replace(/%40/g, "@")
      + "?subject=" + encodeURIComponent(subject) + "&body=" + encodeURIComponent(tr("console.mail_hello") + quote + "\n\n");
  }

  async function openTicket(ticketId) {
    els.ticketEmpty.hidden = true;
    els.ticket.hidden = false;
    els.ticketPane.setAttribute("aria-labelledby", "ticket-title");
    els.ticketAlert.textContent = "";
    els.ticketTranscript.replaceChildren(el("li", "entry entry--system", tr("console.loading")));
    try {
      const data = await api("GET", "/agents/tickets/" + encodeURIComponent(ticketId));
      if (!isObject(data.ticket)) throw new ApiError(500, {});
      state.ticket = data.ticket;
      renderTicket();
      renderTickets();
      els.ticketTitle.focus();
    } catch (err) {
      if (!state.token) return;
      els.ticketAlert.textContent = err.status === 404 ? tr("console.ticket_gone")
        : tr("console.ticket_failed", { problem: problemText(err) });
      els.ticketTranscript.replaceChildren();
    }
  }

  function renderTicket() {
    const t = state.ticket;
    if (!t) return;
    els.ticketTitle.textContent = tr("console.ticket_from", { email: t.email || tr("console.a_customer") });
    els.ticketStatus.textContent = t.status === "closed" ? tr("console.ticket_answered") : tr("console.ticket_open");
    els.ticketStatus.className = "badge badge--ticket-" + t.status;
    els.ticketCreated.textContent = dateTime(t.createdAt);
    els.ticketId.textContent = t.id;
    els.ticketEmail.textContent = t.email || "";
    els.ticketEmail.href = mailto(t);
    els.ticketReply.href = mailto(t);
    els.ticketClose.disabled = t.status === "closed";
    els.ticketClose.textContent = t.status === "closed" ? tr("console.ticket_answered") : tr("console.mark_answered");
    els.ticketReasons.replaceChildren();
    const reasons = reasonLabels(t.reasons);
    if (reasons.length) {
      els.ticketReasons.appendChild(el("h3", "reasons__title", tr("console.escalated_because")));
      const list = el("ul", "chips");
      for (const label of reasons) list.appendChild(el("li", "chip", label));
      els.ticketReasons.appendChild(list);
    }
    const entries = (Array.isArray(t.transcript) ? t.transcript : []).filter(isObject);
    els.ticketTranscript.replaceChildren(...entries.map(entryNode));
    if (!entries.length) els.ticketTranscript.appendChild(el("li", "entry entry--system", tr("console.no_messages")));
  }

  els.ticketClose.addEventListener("click", async () => {
    const t = state.ticket;
    if (!t || t.status === "closed") return;
    els.ticketClose.disabled = true;
    try {
      const data = await api("POST", "/agents/tickets/" + encodeURIComponent(t.id) + "/close", {});
      const updated = isObject(data.ticket) ? data.ticket : { ...t, status: "closed" };
      if (state.ticket && state.ticket.id === t.id) state.ticket = { ...state.ticket, ...updated };
      const listed = state.tickets.find((x) => x.id === t.id);
      if (listed && listed.status !== "closed") setTicketsOpen(state.ticketsOpen - 1);
      if (listed) listed.status = "closed";
      renderTicket();
      renderTickets();
      announce(tr("console.marked_answered"));
      els.ticketTitle.focus();
    } catch (err) {
      if (!state.token) return;
      els.ticketAlert.textContent = tr("console.not_marked", { problem: problemText(err) });
      els.ticketClose.disabled = false;
    }
  });

  els.ticketConversation.addEventListener("click", () => {
    const t = state.ticket;
    if (!t || typeof t.sessionId !== "string") return;
    showView("conversations", false);
    openConversation(t.sessionId);
  });

  /** Exports need the bearer token, so they are fetched and saved as a file from a blob. */
  async function download(link) {
    const href = link.getAttribute("href");
    const name = link.getAttribute("download") || "tickets";
    const label = link.textContent;
    link.setAttribute("aria-busy", "true");
    try {
      const res = await fetch(href, { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
      if (res.status === 401) { signedOut(tr("console.signin_expired_or_ended"), true); return; }
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = name;
      a.hidden = true;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce(tr("console.exported", { format: label }));
    } catch (err) {
      els.ticketsAlert.textContent = tr("console.export_failed", { problem: problemText(err) });
    } finally {
      link.removeAttribute("aria-busy");
    }
  }

  for (const link of [els.exportCsv, els.exportJson]) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      download(link);
    });
  }

  // --- start ---------------------------------------------------------------------------------------------------------
  // The labels first (the catalogue for the browser's language, or ?lang=…), then the console.
  function start() {
    renderAlertsToggle();
    const savedToken = tab.get(KEYS.token);
    if (!savedToken) {
      showSignin();
      els.email.focus();
    } else {
      // Still valid? /agents/me answers for the token; a 401 shows the sign-in form.
      state.token = savedToken;
      api("GET", "/agents/me").then((data) => {
        let saved = null;
        try { saved = JSON.parse(tab.get(KEYS.agent) || "null"); } catch (err) { saved = null; }
        startSession(savedToken, isObject(data.agent) ? data.agent : saved || {}, tab.get(KEYS.expires));
      }).catch((err) => {
        if (state.token) { // not a 401: the server is unreachable; keep the token and say so
          state.token = null;
          showSignin();
          setSigninMessage("error", problemText(err, tr("console.unreachable_later")));
        }
      });
    }
  }
  (i18n ? i18n.ready : Promise.resolve()).then(start);
})();
