// Agent assist in the console: the handoff summary at the top of a conversation, and the
// reply suggestions above the composer (click one, or Alt+1..3 in the reply box, to insert it).
// Rendering only; agent.js wires it to the conversation. Text is set with textContent only,
// labels come from the message catalogues (public/js/i18n.js).
(function () {
  "use strict";

  const i18n = window.SupportBotI18n;
  const tr = (key, vars) => (i18n ? i18n.t(key, vars) : key);
  const MOODS = ["positive", "neutral", "negative", "frustrated"];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function isObject(value) { return value !== null && typeof value === "object"; }

  function row(list, label, value) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && !value.length)) return;
    list.appendChild(el("dt", "summary__label", label));
    const dd = el("dd", "summary__value");
    if (Array.isArray(value)) {
      const items = el("ul", "summary__items");
      for (const item of value) items.appendChild(el("li", null, item));
      dd.appendChild(items);
    } else {
      dd.textContent = String(value);
    }
    list.appendChild(dd);
  }

  /** The handoff summary into `section` (emptied when there is none). */
  function renderSummary(section, summary) {
    section.replaceChildren();
    if (!isObject(summary)) return;
    const head = el("p", "summary__head");
    head.appendChild(el("strong", "summary__title", tr("console.summary_label")));
    head.appendChild(el("span", "badge summary__origin",
      summary.origin === "model" ? tr("console.written_by", { provider: summary.provider || tr("console.the_model") })
        : tr("console.extracted")));
    section.appendChild(head);
    const list = el("dl", "summary__list");
    row(list, tr("console.wants"), summary.request);
    row(list, tr("console.tried"), summary.tried);
    row(list, tr("console.mood"), MOODS.includes(summary.mood) ? tr("console.mood_" + summary.mood) : summary.mood);
    row(list, tr("console.references"), Array.isArray(summary.identifiers) ? summary.identifiers : []);
    const reasons = Array.isArray(summary.reasons)
      ? summary.reasons.filter(isObject).map((r) => r.rule + (r.detail ? ": " + r.detail : "")) : [];
    row(list, tr("console.handed_over_because"), reasons);
    const knowledge = Array.isArray(summary.knowledge)
      ? summary.knowledge.filter(isObject).map((k) => k.title || k.id) : [];
    row(list, tr("console.bot_answered_from"), knowledge);
    row(list, tr("console.key_messages"), Array.isArray(summary.highlights) ? summary.highlights : []);
    section.appendChild(list);
  }

  /** The suggestions into `section` as buttons; `pick(index)` inserts one. */
  function renderSuggestions(section, suggestions, pick) {
    section.replaceChildren();
    const list = Array.isArray(suggestions) ? suggestions.filter((s) => isObject(s) && typeof s.text === "string") : [];
    if (!list.length) return;
    section.appendChild(el("p", "suggestions__title", tr("console.suggestions_title", { n: list.length })));
    const items = el("ol", "suggestions__list");
    list.forEach((suggestion, index) => {
      const li = el("li");
      const button = el("button", "suggestion");
      button.type = "button";
      button.dataset.index = String(index);
      button.setAttribute("aria-keyshortcuts", "Alt+" + (index + 1));
      button.appendChild(el("span", "suggestion__text", suggestion.text));
      const pct = typeof suggestion.confidence === "number" ? Math.round(suggestion.confidence * 100) + "%" : "";
      const sources = Array.isArray(suggestion.sources)
        ? suggestion.sources.filter(isObject).map((s) => s.title || s.id).join(", ") : "";
      const meta = [suggestion.origin === "model" ? tr("console.drafted_by_model") : tr("console.knowledge_base"), pct, sources]
        .filter(Boolean).join(" · ");
      button.appendChild(el("span", "suggestion__meta", "Alt+" + (index + 1) + " · " + meta));
      button.addEventListener("click", () => pick(index));
      li.appendChild(button);
      items.appendChild(li);
    });
    section.appendChild(items);
  }

  window.AgentAssist = { renderSummary, renderSuggestions };
})();
