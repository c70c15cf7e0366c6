// A small browser client for the customers' side of the support API: the Socket.IO events
// (names and payloads as in openapi/schemas/events.yaml and server-events.yaml; types in
// supportbot-client.d.ts) and the REST calls the chat page and the widget make.
// Load socket.io.min.js first (or pass `socket`); then `new SupportBotClient({baseUrl})`.
(function (root) {
  "use strict";

  const CLIENT_EVENTS = Object.freeze([
    "join-chat", "send-message", "typing", "rate", "leave-contact", "identify", "join-agents",
  ]);
  const SERVER_EVENTS = Object.freeze([
    "chat-joined", "typing", "message-chunk", "message-reset", "message-received",
    "escalation-needed", "agent-joined", "conversation-updated", "csat-request", "rated",
    "contact-requested", "contact-saved", "identified", "agents-joined", "error",
  ]);

  class ProblemError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || "HTTP " + status);
      this.status = status;
      this.problem = problem;
    }
  }

  class SupportBotClient {
    constructor(options) {
      const opts = options || {};
      this.baseUrl = (opts.baseUrl || root.location.origin).replace(/\/+$/, "");
      this.socket = opts.socket || root.io(this.baseUrl, {
        transports: ["websocket", "polling"], tryAllTransports: true, autoConnect: false,
      });
    }

    emit(event, payload) {
      if (!CLIENT_EVENTS.includes(event)) throw new Error("not a client event: " + event);
      this.socket.emit(event, payload);
    }

    /** Listen to a server event; returns the function that stops listening. */
    on(event, listener) {
      if (!SERVER_EVENTS.includes(event)) throw new Error("not a server event: " + event);
      this.socket.on(event, listener);
      return () => this.socket.off(event, listener);
    }

    joinChat(payload) { this.emit("join-chat", payload); }
    sendMessage(payload) { this.emit("send-message", payload); }
    typing(payload) { this.emit("typing", payload); }
    rate(payload) { this.emit("rate", payload); }
    leaveContact(payload) { this.emit("leave-contact", payload); }
    identify(payload) { this.emit("identify", payload); }

    async request(method, path, body) {
      const init = { method, headers: { Accept: "application/json" } };
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      const res = await fetch(this.baseUrl + "/api/v1" + path, init);
      let data = null;
      try { data = await res.json(); } catch (err) { data = null; }
      if (!res.ok) throw new ProblemError(res.status, data);
      return data;
    }

    messages(language) {
      return this.request("GET", "/i18n/messages" + (language ? "?language=" + encodeURIComponent(language) : ""));
    }

    rateOverRest(sessionId, rating, comment) {
      return this.request("POST", "/chat/session/" + encodeURIComponent(sessionId) + "/rating",
        comment ? { rating, comment } : { rating });
    }

    contactOverRest(sessionId, email) {
      return this.request("POST", "/chat/session/" + encodeURIComponent(sessionId) + "/contact", { email });
    }

    health() { return this.request("GET", "/health"); }
  }

  SupportBotClient.CLIENT_EVENTS = CLIENT_EVENTS;
  SupportBotClient.SERVER_EVENTS = SERVER_EVENTS;
  SupportBotClient.ProblemError = ProblemError;
  root.SupportBotClient = SupportBotClient;
})(window);
