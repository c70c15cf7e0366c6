// Inside the widget's iframe (the chat page with ?widget=1&origin=…): talks to the loader on
// the company's page (public/widget.js) with postMessage, only with the origin it was given,
// and only with its parent. The loader opens and closes the panel, asks to identify the
// customer or start a new conversation; the frame reports unread replies and identify results.
(function () {
  "use strict";

  const params = new URLSearchParams(window.location.search);
  const hostOrigin = params.get("origin");
  if (params.get("widget") !== "1" || window.parent === window) return;
  if (!hostOrigin || !/^https?:\/\/[^/\s]+$/.test(hostOrigin)) return;
  document.documentElement.classList.add("embedded");

  const COLOR = /^#[0-9a-fA-F]{3,8}$/;
  const text = (name, max) => {
    const value = params.get(name);
    return value && value.trim() ? value.trim().slice(0, max) : null;
  };
  const accent = params.get("accent");
  if (accent && COLOR.test(accent)) {
    document.documentElement.style.setProperty("--accent", accent);
    document.documentElement.style.setProperty("--me", accent);
  }

  const state = { open: false, unread: 0, chat: null, identity: null, request: null };

  function post(type, data) {
    window.parent.postMessage(Object.assign({ source: "supportbot", type }, data || {}), hostOrigin);
  }

  function setUnread(count) {
    state.unread = count;
    post("unread", { count });
  }

  /** Attach the identity the company's page gave (again after a new conversation starts). */
  function sendIdentity() {
    const chat = state.chat;
    if (!chat || !state.identity || !chat.state.sessionId || !chat.socket.connected) return;
    chat.socket.emit("identify", Object.assign({ sessionId: chat.state.sessionId }, state.identity));
  }

  function identify(identity, id) {
    const clean = {};
    if (!identity || typeof identity.userId !== "string" || !identity.userId) {
      post("identify-result", { id, ok: false, code: "INVALID_PAYLOAD" });
      return;
    }
    clean.userId = identity.userId.slice(0, 128);
    for (const key of ["name", "email", "signature"]) {
      if (typeof identity[key] === "string" && identity[key]) clean[key] = identity[key];
    }
    state.identity = clean;
    state.request = id;
    sendIdentity();
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || event.origin !== hostOrigin) return;
    const data = event.data;
    if (!data || data.source !== "supportbot-host" || typeof data.type !== "string") return;
    if (data.type === "open") {
      state.open = true;
      setUnread(0);
      const input = document.getElementById("message");
      if (input) input.focus();
    } else if (data.type === "close") {
      state.open = false;
    } else if (data.type === "identify") {
      identify(data.identity, data.id);
    } else if (data.type === "new-conversation" && state.chat) {
      state.chat.newChat();
    }
  });

  window.SupportBotEmbed = {
    greeting: text("greeting", 500),
    /** A reply arrived (bot or person). The host page decides whether it is unread: it knows
     *  at once when its panel closes, while its "close" message may still be on its way here. */
    arrived() {
      post("arrived", { hidden: document.hidden });
    },
    attach(chat) {
      state.chat = chat;
      const i18n = window.SupportBotI18n;
      const t = chat.t;
      chat.socket.on("chat-joined", sendIdentity);
      chat.socket.on("identified", (data) => {
        post("identify-result", { id: state.request, ok: true, verified: Boolean(data && data.verified) });
      });
      chat.socket.on("error", (data) => {
        if (!data || data.code !== "IDENTITY_REFUSED") return;
        state.identity = null;
        chat.alertUser(t("page.identity_refused"));
        post("identify-result", { id: state.request, ok: false, code: data.code });
      });
      (i18n ? i18n.ready : Promise.resolve()).then(() => {
        const title = text("title", 80);
        if (title) document.getElementById("chat-title").textContent = title;
        post("ready", {
          language: i18n ? i18n.language : "en",
          labels: {
            open: t("widget.open"), close: t("widget.close"), unread: t("widget.unread"),
            frame: t("widget.frame_title"),
          },
        });
      });
    },
  };
})();
