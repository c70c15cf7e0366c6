// The page's labels in the customer's language: the server's catalogue for the widget's
// `lang` (in the page's address) or, without one, the browser's Accept-Language. Elements
// name their label with data-i18n (text), data-i18n-placeholder, data-i18n-aria-label,
// data-i18n-title. The agent console (public/agent/) uses it the same way.
(function () {
  "use strict";

  const asked = new URLSearchParams(window.location.search).get("lang");
  const state = { messages: {}, language: "en", negotiated: false };

  function t(key, vars) {
    const template = Object.prototype.hasOwnProperty.call(state.messages, key) ? state.messages[key] : key;
    if (!vars) return template;
    return template.replace(/\{(\w+)\}/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole);
  }

  function apply(root) {
    for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of root.querySelectorAll("[data-i18n-placeholder]")) {
      node.setAttribute("placeholder", t(node.dataset.i18nPlaceholder));
    }
    for (const node of root.querySelectorAll("[data-i18n-aria-label]")) {
      node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
    }
    for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  }

  const query = asked ? "?language=" + encodeURIComponent(asked) : "";
  const ready = fetch("/api/v1/i18n/messages" + query, { headers: { Accept: "application/json" } })
    .then((res) => (res.ok ? res.json() : null))
    .catch(() => null)
    .then((body) => {
      if (body && body.messages && typeof body.messages === "object") {
        state.messages = body.messages;
        state.language = typeof body.language === "string" ? body.language : "en";
        state.negotiated = body.negotiated === true;
        document.documentElement.lang = state.language;
        apply(document);
      }
    });

  window.SupportBotI18n = {
    t,
    ready,
    apply,
    get language() { return state.language; },
    get negotiated() { return state.negotiated; },
  };
})();
