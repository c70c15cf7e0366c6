/*! Support chat widget loader. One tag on any site:
 *   <script src="https://support.example.com/widget.js" async
 *           data-title="Acme help" data-color="#0b5cad" data-position="right"></script>
 * It adds a launcher button; the chat itself runs in an iframe served by the support site,
 * so the page's CSS and scripts cannot break it and it cannot read the page. The launcher
 * lives in a shadow root with its styles pinned, and this file uses no Array or JSON
 * methods (a page may have replaced them).
 * API: SupportBot.init({...}), .open(), .close(), .toggle(), .newConversation(),
 *      .identify({userId, name, email, signature}) -> Promise, .on(event, fn).
 */
(function () {
  "use strict";
  if (window.SupportBot && window.SupportBot.version) return;

  var script = document.currentScript;
  var base = new URL(script ? script.src : "/widget.js", window.location.href).origin;
  var OPTIONS = ["title", "greeting", "avatar", "language", "position", "color", "textColor"];
  var COLOR = /^#[0-9a-fA-F]{3,8}$/;
  var config = { position: "right", color: "#0b5cad", textColor: "#ffffff" };
  var labels = { open: "Open the chat", close: "Close the chat", unread: "{n} unread", frame: "Chat with our support" };
  var ui = null;
  var isOpen = false;
  var unread = 0;
  var listeners = {};
  var requests = {};
  var counter = 0;

  function readAttributes() {
    if (!script) return;
    for (var i = 0; i < OPTIONS.length; i++) {
      var name = OPTIONS[i];
      var attr = "data-" + name.replace(/[A-Z]/g, function (c) { return "-" + c.toLowerCase(); });
      var value = script.getAttribute(attr);
      if (value) config[name] = value;
    }
  }

  function emit(event, detail) {
    var fns = listeners[event] || [];
    for (var i = 0; i < fns.length; i++) {
      try { fns[i](detail); } catch (err) { /* a listener's own error */ }
    }
  }

  function frameUrl() {
    var url = base + "/?widget=1&origin=" + encodeURIComponent(window.location.origin);
    var pairs = [["lang", config.language], ["title", config.title], ["greeting", config.greeting],
      ["accent", COLOR.test(config.color || "") ? config.color : null]];
    for (var i = 0; i < pairs.length; i++) {
      if (pairs[i][1]) url += "&" + pairs[i][0] + "=" + encodeURIComponent(String(pairs[i][1]));
    }
    return url;
  }

  var CSS =
    ":host{all:initial}" +
    ".launcher{position:fixed;bottom:20px;width:60px;height:60px;border-radius:50%;border:0;" +
    "cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:flex;align-items:center;" +
    "justify-content:center;padding:0;margin:0;font:600 14px/1 system-ui,sans-serif}" +
    ".launcher:focus-visible,.close:focus-visible{outline:3px solid #9a4f00;outline-offset:3px}" +
    ".launcher img{width:60px;height:60px;border-radius:50%;object-fit:cover}" +
    ".launcher svg{width:28px;height:28px;fill:currentColor}" +
    ".badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;border-radius:11px;" +
    "background:#b42318;color:#fff;font:700 12px/22px system-ui,sans-serif;text-align:center;padding:0 6px}" +
    ".panel{position:fixed;bottom:92px;width:min(380px,calc(100vw - 32px));" +
    "height:min(620px,calc(100vh - 120px));border-radius:14px;overflow:hidden;background:#fff;" +
    "box-shadow:0 10px 40px rgba(0,0,0,.3);display:flex;flex-direction:column}" +
    ".panel iframe{border:0;width:100%;flex:1;display:block;background:#fff}" +
    ".close{position:absolute;top:8px;width:32px;height:32px;border:0;border-radius:50%;" +
    "background:rgba(0,0,0,.55);color:#fff;font:700 18px/32px system-ui,sans-serif;cursor:pointer;z-index:1}" +
    ".right{right:20px}.left{left:20px}.panel.right .close{right:8px}.panel.left .close{left:8px}" +
    "[hidden]{display:none!important}";
  var ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

  function pin(host) {
    // Inline !important beats any stylesheet rule of the page (`* {display:none !important}`).
    host.style.cssText = "all:initial!important;display:block!important;position:fixed!important;" +
      "z-index:2147483647!important;visibility:visible!important;opacity:1!important;" +
      "width:0!important;height:0!important;bottom:0!important;right:0!important;" +
      "transform:none!important;filter:none!important;clip-path:none!important";
  }

  function build() {
    var host = document.createElement("supportbot-widget");
    pin(host);
    var root = host.attachShadow({ mode: "open" });
    if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS); // not an inline style: works under the page's CSP too
      root.adoptedStyleSheets = [sheet];
    } else {
      var style = document.createElement("style");
      style.textContent = CSS;
      root.appendChild(style);
    }
    var side = config.position === "left" ? "left" : "right";
    var button = document.createElement("button");
    button.type = "button";
    button.className = "launcher " + side;
    button.setAttribute("aria-expanded", "false");
    button.style.background = COLOR.test(config.color || "") ? config.color : "#0b5cad";
    button.style.color = COLOR.test(config.textColor || "") ? config.textColor : "#ffffff";
    var avatar = safeImage(config.avatar);
    if (avatar) {
      var img = document.createElement("img");
      img.src = avatar;
      img.alt = "";
      button.appendChild(img);
    } else {
      button.innerHTML = ICON;
    }
    var badge = document.createElement("span");
    badge.className = "badge";
    badge.hidden = true;
    badge.setAttribute("aria-hidden", "true");
    button.appendChild(badge);

    var panel = document.createElement("div");
    panel.className = "panel " + side;
    panel.hidden = true;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.textContent = "\u00d7";
    var frame = document.createElement("iframe");
    frame.src = frameUrl();
    frame.title = labels.frame;
    frame.setAttribute("allow", "clipboard-write");
    frame.setAttribute("referrerpolicy", "origin");
    panel.appendChild(close);
    panel.appendChild(frame);
    root.appendChild(panel);
    root.appendChild(button);

    button.addEventListener("click", function () { toggle(); });
    close.addEventListener("click", function () { hide(); button.focus(); });
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { hide(); button.focus(); }
    });
    (document.body || document.documentElement).appendChild(host);
    ui = { host: host, button: button, badge: badge, panel: panel, close: close, frame: frame };
    relabel();
  }

  function safeImage(url) {
    if (!url) return null;
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (err) {
      return null;
    }
  }

  function relabel() {
    if (!ui) return;
    var name = isOpen ? labels.close : labels.open;
    if (unread) name += " (" + labels.unread.replace("{n}", String(unread)) + ")";
    ui.button.setAttribute("aria-label", name);
    ui.close.setAttribute("aria-label", labels.close);
    ui.frame.title = labels.frame;
    ui.badge.textContent = unread > 9 ? "9+" : String(unread);
    ui.badge.hidden = !unread;
  }

  function tell(type, data) {
    if (!ui || !ui.frame.contentWindow) return;
    var message = { source: "supportbot-host", type: type };
    var extra = data || {};
    for (var key in extra) if (Object.prototype.hasOwnProperty.call(extra, key)) message[key] = extra[key];
    ui.frame.contentWindow.postMessage(message, base);
  }

  function show() {
    if (!ui) build();
    isOpen = true;
    ui.panel.hidden = false;
    ui.button.setAttribute("aria-expanded", "true");
    unread = 0;
    relabel();
    tell("open");
    ui.frame.focus();
    emit("open");
  }

  function hide() {
    if (!ui) return;
    isOpen = false;
    ui.panel.hidden = true;
    ui.button.setAttribute("aria-expanded", "false");
    relabel();
    tell("close");
    emit("close");
  }

  function toggle() { if (isOpen) hide(); else show(); }

  window.addEventListener("message", function (event) {
    if (!ui || event.origin !== base || event.source !== ui.frame.contentWindow) return;
    var data = event.data;
    if (!data || data.source !== "supportbot") return;
    if (data.type === "ready") {
      var given = data.labels || {};
      for (var key in labels) {
        if (Object.prototype.hasOwnProperty.call(given, key) && typeof given[key] === "string") labels[key] = given[key];
      }
      relabel();
      if (isOpen) tell("open");
      emit("ready", { language: data.language });
    } else if (data.type === "unread") {
      unread = isOpen ? 0 : Math.max(0, Number(data.count) || 0);
      relabel();
      emit("unread", { count: unread });
    } else if (data.type === "arrived") {
      if (isOpen && !data.hidden) return; // read as it arrives
      unread += 1;
      relabel();
      emit("unread", { count: unread });
    } else if (data.type === "identify-result") {
      var request = requests[data.id];
      if (!request) return;
      delete requests[data.id];
      if (data.ok) request.resolve({ verified: Boolean(data.verified) });
      else request.reject(new Error(data.code || "IDENTITY_REFUSED"));
    }
  });

  var api = {
    version: "1",
    /** Options as the data- attributes: title, greeting, avatar, language, position, color, textColor. */
    init: function (options) {
      for (var i = 0; i < OPTIONS.length; i++) {
        var name = OPTIONS[i];
        if (options && options[name] !== undefined) config[name] = String(options[name]);
      }
      if (ui) { ui.host.remove(); ui = null; isOpen = false; }
      build();
      return api;
    },
    open: function () { show(); },
    close: function () { hide(); },
    toggle: function () { toggle(); },
    newConversation: function () { if (!ui) build(); tell("new-conversation"); },
    /** Who the signed-in customer is; `signature` is hex HMAC-SHA256(secret, userId) from your server. */
    identify: function (identity) {
      if (!ui) build();
      counter += 1;
      var id = "id" + counter;
      return new Promise(function (resolve, reject) {
        requests[id] = { resolve: resolve, reject: reject };
        var send = function () { tell("identify", { id: id, identity: identity }); };
        if (api.ready) send(); else on("ready", send, true);
      });
    },
    on: function (event, fn) { on(event, fn, false); return api; },
    ready: false,
  };

  function on(event, fn, once) {
    var wrapped = once ? function (detail) {
      var list = listeners[event] || [];
      var kept = [];
      for (var i = 0; i < list.length; i++) if (list[i] !== wrapped) kept[kept.length] = list[i];
      listeners[event] = kept;
      fn(detail);
    } : fn;
    var list = listeners[event] || (listeners[event] = []);
    list[list.length] = wrapped;
  }

  on("ready", function () { api.ready = true; }, false);
  window.SupportBot = api;
  readAttributes();
  if (!script || script.getAttribute("data-manual") !== "true") {
    if (document.body) build();
    else document.addEventListener("DOMContentLoaded", function () { if (!ui) build(); });
  }
})();
