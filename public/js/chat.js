// The chat page: one Socket.IO connection, one session kept in localStorage.
// Server text is always rendered with textContent, never as HTML.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const els = {
    messages: $("messages"), form: $("composer"), input: $("message"), send: $("send"),
    counter: $("counter"), typing: $("typing"), escalation: $("escalation"),
    alert: $("alert"), alertText: $("alert-text"), alertClose: $("alert-close"),
    connection: $("connection"), providers: $("providers"), newChat: $("new-chat"),
  };
  const MAX = Number(els.input.getAttribute("maxlength")) || 4000;
  const store = {
    get userId() {
      let id = localStorage.getItem("supportbot.userId");
      if (!id) {
        id = "web-" + Math.random().toString(36).slice(2, 12);
        localStorage.setItem("supportbot.userId", id);
      }
      return id;
    },
    get sessionId() { return localStorage.getItem("supportbot.sessionId"); },
    set sessionId(id) {
      if (id) localStorage.setItem("supportbot.sessionId", id);
      else localStorage.removeItem("supportbot.sessionId");
    },
  };

  let sessionId = null;
  let pending = 0;
  const bubbles = new Map(); // messageId -> bubble element of a bot reply

  // --- rendering ----------------------------------------------------------------
  function scrollDown() { els.messages.scrollTop = els.messages.scrollHeight; }

  function addBubble(role, text) {
    const li = document.createElement("li");
    li.className = "msg msg--" + role;
    const body = document.createElement("span");
    body.className = "msg__text";
    body.textContent = text;
    li.appendChild(body);
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = role === "user" ? "You said: " : role === "assistant" ? "Assistant said: " : "";
    li.insertBefore(who, body);
    els.messages.appendChild(li);
    scrollDown();
    return li;
  }

  function describe(li, reply) {
    li.querySelectorAll(".msg__meta, .msg__sources").forEach((n) => n.remove());
    if (reply.provider) {
      const meta = document.createElement("span");
      meta.className = "msg__meta";
      const pct = Math.round((reply.confidence || 0) * 100);
      meta.textContent = "answered by " + reply.provider + " · confidence " + pct + "%";
      li.appendChild(meta);
    }
    const sources = Array.isArray(reply.sources) ? reply.sources : [];
    if (sources.length) {
      const list = document.createElement("ul");
      list.className = "msg__sources";
      list.setAttribute("aria-label", "Sources");
      for (const source of sources) {
        const item = document.createElement("li");
        if (source.url && /^https?:\/\//.test(source.url)) {
          const link = document.createElement("a");
          link.href = source.url;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          link.textContent = source.title || source.id;
          item.appendChild(link);
        } else {
          item.textContent = source.title || source.id;
        }
        list.appendChild(item);
      }
      li.appendChild(list);
    }
  }

  function showBot(reply) {
    const li = bubbles.get(reply.messageId) || addBubble("assistant", "");
    li.querySelector(".msg__text").textContent = reply.message;
    describe(li, reply);
    bubbles.delete(reply.messageId);
    if (reply.needsEscalation) els.escalation.hidden = false;
    scrollDown();
  }

  function showHistory(history) {
    els.messages.replaceChildren();
    for (const entry of history || []) {
      if (entry.role === "user") {
        addBubble("user", entry.content);
      } else if (entry.role === "assistant") {
        const li = addBubble("assistant", entry.content);
        describe(li, entry);
      }
    }
  }

  function alertUser(text) {
    els.alertText.textContent = text;
    els.alert.hidden = false;
  }

  function setConnection(state, label) {
    els.connection.dataset.state = state;
    els.connection.textContent = label;
  }

  function updateComposer() {
    const length = els.input.value.length;
    els.counter.textContent = length + " / " + MAX;
    els.send.disabled = !sessionId || !els.input.value.trim() || length > MAX;
  }

  // --- socket -------------------------------------------------------------------
  const socket = io({ transports: ["websocket", "polling"] });

  function join() {
    const payload = { userId: store.userId };
    if (store.sessionId) payload.sessionId = store.sessionId;
    socket.emit("join-chat", payload);
  }

  socket.on("connect", () => { setConnection("connected", "Connected"); join(); });
  socket.on("disconnect", () => setConnection("disconnected", "Disconnected"));
  socket.io.on("reconnect_attempt", () => setConnection("reconnecting", "Reconnecting…"));

  socket.on("chat-joined", (data) => {
    sessionId = data.sessionId;
    store.sessionId = sessionId;
    showHistory(data.history);
    els.escalation.hidden = data.status !== "escalated";
    if (!data.history || !data.history.length) {
      addBubble("system", "Hi! Ask me anything about orders, shipping, returns or your account.");
    }
    updateComposer();
    els.input.focus();
  });

  socket.on("typing", (data) => { if (data.sessionId === sessionId) els.typing.hidden = !data.isTyping; });

  socket.on("message-chunk", (data) => {
    let li = bubbles.get(data.messageId);
    if (!li) { li = addBubble("assistant", ""); bubbles.set(data.messageId, li); }
    li.querySelector(".msg__text").textContent += data.delta;
    scrollDown();
  });

  socket.on("message-reset", (data) => {
    const li = bubbles.get(data.messageId);
    if (li) li.querySelector(".msg__text").textContent = "";
  });

  socket.on("message-received", (data) => {
    if (data.sessionId && data.sessionId !== sessionId) return;
    if (data.isBot) {
      pending = Math.max(0, pending - 1);
      showBot(data);
    } else {
      addBubble("user", data.message); // sent from elsewhere (another tab, the REST API)
    }
  });

  socket.on("escalation-needed", (data) => {
    if (data.sessionId === sessionId) els.escalation.hidden = false;
  });

  socket.on("error", (data) => {
    const code = data && data.code;
    if (code === "SESSION_NOT_FOUND") {
      const hadSession = Boolean(sessionId);
      store.sessionId = null; // expired: start afresh
      sessionId = null;
      if (hadSession) alertUser("Your conversation expired, so a new one has started.");
      join();
      return;
    }
    alertUser((data && data.message) || "Something went wrong.");
  });

  // --- page controls ------------------------------------------------------------
  els.input.addEventListener("input", updateComposer);
  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      els.form.requestSubmit();
    }
  });
  els.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = els.input.value.trim();
    if (!text || !sessionId || text.length > MAX) return;
    addBubble("user", text);
    socket.emit("send-message", { sessionId, message: text, userId: store.userId });
    pending += 1;
    els.input.value = "";
    updateComposer();
  });
  els.alertClose.addEventListener("click", () => { els.alert.hidden = true; els.input.focus(); });
  els.newChat.addEventListener("click", () => {
    store.sessionId = null;
    sessionId = null;
    els.escalation.hidden = true;
    els.messages.replaceChildren();
    updateComposer();
    join();
  });

  // --- providers' status ----------------------------------------------------------
  const STATE_LABELS = {
    closed: "available", open: "unavailable", half_open: "recovering",
    misconfigured: "misconfigured", unknown: "unknown",
  };
  async function refreshStatus() {
    try {
      const res = await fetch("/api/v1/health", { headers: { Accept: "application/json" } });
      const health = await res.json();
      const responders = health.responders || {};
      els.providers.replaceChildren();
      for (const [name, info] of Object.entries(responders)) {
        const pill = document.createElement("span");
        pill.className = "pill";
        pill.dataset.state = (info && info.state) || "unknown";
        pill.textContent = name + ": " + (STATE_LABELS[pill.dataset.state] || pill.dataset.state);
        els.providers.appendChild(pill);
      }
    } catch (err) {
      /* status is informative only; the chat works without it */
    }
  }
  refreshStatus();
  setInterval(refreshStatus, 30000);
  updateComposer();
})();
