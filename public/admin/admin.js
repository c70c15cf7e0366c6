// The analytics dashboard: an admin signs in (as in the agent console: the token lives in this
// tab only), then sees the period's cards, charts over time (Chart.js, vendored at install),
// the knowledge gaps with "add to the knowledge base", and the providers' health.
// Everything the server sends is rendered with textContent, never parsed as HTML.
(function () {
  "use strict";

  const API = "/api/v1";
  const KEYS = { token: "supportbot.adminToken", agent: "supportbot.admin", expires: "supportbot.adminExpires" };
  const MAX_TIMER_MS = 2147483647;
  const DAY_MS = 86400000;

  const $ = (id) => document.getElementById(id);
  const els = {
    signin: $("signin"), signinForm: $("signin-form"), email: $("email"), password: $("password"),
    signinSubmit: $("signin-submit"), signinError: $("signin-error"), signinInfo: $("signin-info"),
    dashboard: $("dashboard"), main: $("main"), range: $("range"), period: $("period"),
    refresh: $("refresh"), me: $("me"), signout: $("signout"), alert: $("dash-alert"),
    gapsBody: $("gaps-body"), gapsEmpty: $("gaps-empty"), gapsNote: $("gaps-note"), gaps: $("gaps"),
    providersBody: $("providers-body"), announcer: $("announcer"),
    kbDialog: $("kb-dialog"), kbForm: $("kb-form"), kbError: $("kb-error"), kbName: $("kb-name"),
    kbTitle: $("kb-entry-title"), kbQuestions: $("kb-questions"), kbAnswer: $("kb-answer"),
    kbCancel: $("kb-cancel"), kbSave: $("kb-save"),
  };

  // --- storage: this tab only (sessionStorage), memory when storage is refused --------------
  const memory = new Map();
  const tab = {
    get(key) { try { return sessionStorage.getItem(key); } catch (err) { return memory.get(key) || null; } },
    set(key, value) {
      if (value) memory.set(key, value); else memory.delete(key);
      try { if (value) sessionStorage.setItem(key, value); else sessionStorage.removeItem(key); } catch (err) { /* memory */ }
    },
  };

  const state = { token: null, agent: null, expiryTimer: 0, today: null, charts: {}, gap: null, loading: 0 };

  // --- helpers ---------------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function isObject(value) { return value !== null && typeof value === "object"; }
  function announce(text) {
    els.announcer.textContent = "";
    els.announcer.appendChild(el("p", null, text));
  }

  const { ApiError } = window.SupportApi;
  const api = window.SupportApi.client({
    token: () => state.token,
    expired: () => signedOut("Your sign-in has expired or was ended. Please sign in again.", true),
    unreachable: () => "The server could not be reached. Check the connection and try again.",
  });
  function problemText(err, fallback) {
    return window.SupportApi.problemText(err, fallback || "Something went wrong; please try again.");
  }

  // --- numbers ---------------------------------------------------------------------------------
  const integer = new Intl.NumberFormat("en");
  function count(n) { return typeof n === "number" ? integer.format(n) : "–"; }
  function percent(rate) {
    return rate && typeof rate.value === "number" ? (rate.value * 100).toFixed(1) + " %" : "–";
  }
  function rateNote(rate) {
    return rate ? count(rate.numerator) + " of " + count(rate.denominator) + " " + rate.denominatorName : "";
  }
  function seconds(value) {
    if (typeof value !== "number") return "–";
    if (value < 60) return Math.round(value) + " s";
    if (value < 3600) return Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
    return Math.floor(value / 3600) + " h " + Math.round((value % 3600) / 60) + " min";
  }
  function money(amount, currency) {
    try {
      return new Intl.NumberFormat("en", { style: "currency", currency: currency || "USD", maximumFractionDigits: amount < 10 ? 4 : 2 }).format(amount);
    } catch (err) {
      return amount.toFixed(4) + " " + (currency || "");
    }
  }
  function dayLabel(iso) {
    const t = Date.parse(iso);
    return Number.isFinite(t) ? new Date(t).toLocaleDateString("en", { month: "short", day: "numeric" }) : iso;
  }
  function shiftDay(day, delta) {
    return new Date(Date.parse(day + "T00:00:00Z") + delta * DAY_MS).toISOString().slice(0, 10);
  }

  // --- sign in and out ---------------------------------------------------------------------
  function showSignin() {
    els.dashboard.hidden = true;
    els.signin.hidden = false;
    document.title = "Sign in · Analytics";
  }
  function showDashboard() {
    els.signin.hidden = true;
    els.dashboard.hidden = false;
    document.title = "Analytics";
  }
  function setSigninMessage(kind, text) {
    els.signinError.textContent = kind === "error" ? text : "";
    els.signinInfo.textContent = kind === "info" ? text : "";
    const invalid = kind === "error" && Boolean(text);
    els.email.toggleAttribute("aria-invalid", invalid);
    els.password.toggleAttribute("aria-invalid", invalid);
  }

  els.signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (els.signinSubmit.disabled) return;
    const email = els.email.value.trim();
    const password = els.password.value;
    if (!email || !password) {
      setSigninMessage("error", "Enter your e-mail and your password.");
      (email ? els.password : els.email).focus();
      return;
    }
    els.signinSubmit.disabled = true;
    els.signinSubmit.textContent = "Signing in…";
    setSigninMessage(null, "");
    try {
      const data = await api("POST", "/agents/login", { email, password }, { auth: false });
      if (typeof data.token !== "string" || !isObject(data.agent)) throw new ApiError(500, {});
      els.password.value = "";
      if (data.agent.role !== "admin") {
        await fetch(API + "/agents/logout", { method: "POST", headers: { Authorization: "Bearer " + data.token } }).catch(() => null);
        setSigninMessage("error", "The dashboard is for admins; this account is an agent's.");
        els.email.focus();
        return;
      }
      startSession(data.token, data.agent, data.expiresAt);
    } catch (err) {
      let text;
      if (err.status === 401) text = "Wrong e-mail or password.";
      else if (err.status === 429) text = "Too many failed attempts. Try again later.";
      else if (err.status === 400) text = "Enter a valid e-mail address and your password.";
      else if (err.status === 403) text = problemText(err, "This account is disabled.");
      else text = problemText(err, "Signing in failed; please try again.");
      setSigninMessage("error", text);
      els.password.focus();
      els.password.select();
    } finally {
      els.signinSubmit.disabled = false;
      els.signinSubmit.textContent = "Sign in";
    }
  });

  function startSession(token, agent, expiresAt) {
    state.token = token;
    state.agent = agent;
    tab.set(KEYS.token, token);
    tab.set(KEYS.agent, JSON.stringify(agent));
    tab.set(KEYS.expires, expiresAt ? String(expiresAt) : null);
    clearTimeout(state.expiryTimer);
    const expires = Date.parse(expiresAt || "");
    if (Number.isFinite(expires)) {
      state.expiryTimer = setTimeout(() => signedOut("Your sign-in has expired. Please sign in again.", true),
        Math.min(MAX_TIMER_MS, Math.max(0, expires - Date.now())));
    }
    els.me.textContent = agent.name || agent.email || "";
    setSigninMessage(null, "");
    showDashboard();
    els.main.focus();
    load();
  }

  function signedOut(message, expired) {
    clearTimeout(state.expiryTimer);
    state.token = null;
    state.agent = null;
    tab.set(KEYS.token, null);
    tab.set(KEYS.agent, null);
    tab.set(KEYS.expires, null);
    if (els.kbDialog.open) els.kbDialog.close();
    showSignin();
    setSigninMessage(expired ? "error" : "info", message || "");
    els.email.focus();
  }

  els.signout.addEventListener("click", async () => {
    const token = state.token;
    signedOut("You are signed out.", false);
    if (token) await fetch(API + "/agents/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }).catch(() => null);
  });

  // --- loading ---------------------------------------------------------------------------------
  function rangeQuery() {
    const days = Number(els.range.value) || 7;
    if (!state.today) return "";
    return "from=" + shiftDay(state.today, -(days - 1)) + "&to=" + state.today;
  }

  async function load() {
    const seq = ++state.loading;
    els.alert.textContent = "";
    els.refresh.disabled = true;
    try {
      if (!state.today) state.today = (await api("GET", "/analytics/summary")).to;
      const q = rangeQuery();
      const [summary, gaps, health, ...series] = await Promise.all([
        api("GET", "/analytics/summary?" + q),
        api("GET", "/analytics/gaps?limit=20&" + q),
        api("GET", "/health").catch((err) => (isObject(err.problem) && err.problem.responders ? err.problem : {})),
        ...SERIES.map((m) => api("GET", "/analytics/timeseries?bucket=day&metric=" + m + "&" + q)),
      ]);
      if (seq !== state.loading || !state.token) return;
      const byMetric = {};
      SERIES.forEach((m, i) => { byMetric[m] = series[i]; });
      renderCards(summary);
      renderCharts(byMetric, summary);
      renderGaps(gaps);
      renderProviders(health, summary);
      announce("Figures updated for " + els.period.textContent + ".");
    } catch (err) {
      if (state.token) els.alert.textContent = "The figures could not be loaded: " + problemText(err);
    } finally {
      if (seq === state.loading) els.refresh.disabled = false;
    }
  }
  els.refresh.addEventListener("click", () => { state.today = null; load(); });
  els.range.addEventListener("change", load);

  // --- cards -----------------------------------------------------------------------------------
  function setCard(id, value, note) {
    $("card-" + id).textContent = value;
    $("note-" + id).textContent = note || "";
  }

  function renderCards(s) {
    els.period.textContent = dayLabel(s.from + "T00:00:00") + " – " + dayLabel(s.to + "T00:00:00") + " (" + s.timezone + ")";
    const bot = s.outcomes ? s.outcomes.botResolved : null;
    setCard("episodes", count(s.episodes.count), count(s.messages.total) + " messages");
    setCard("containment", percent(s.containment), rateNote(s.containment) + (bot !== null ? " resolved by the bot" : ""));
    setCard("escalation", percent(s.escalation.rate), rateNote(s.escalation.rate));
    setCard("csat", typeof s.csat.average === "number" ? s.csat.average.toFixed(2) + " / 5" : "–",
      count(s.csat.count) + " ratings · " + percent(s.csat.satisfied) + " satisfied");
    setCard("claim", seconds(s.timeToClaim.p50), count(s.timeToClaim.count) + " claims · p90 " + seconds(s.timeToClaim.p90));
    setCard("customers", count(s.distinctCustomers), "distinct customers who wrote");
    const cost = s.providers.reduce((sum, p) => sum + p.estimatedCost.amount, 0);
    const currency = (s.providers[0] && s.providers[0].estimatedCost.currency) || "USD";
    const tokens = s.providers.reduce((sum, p) => sum + p.tokens.total, 0);
    setCard("cost", money(cost, currency), count(tokens) + " tokens");
  }

  // --- charts ----------------------------------------------------------------------------------
  const SERIES = ["episodes", "containment", "escalations", "csat_average", "time_to_claim_p50",
    "time_to_claim_p90", "responder_latency_p95", "cost"];
  // Distinguishable in both schemes and for common colour blindness (Okabe-Ito).
  const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"];

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function chartDefaults() {
    const ink = css("--ink"), line = css("--line");
    return {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { labels: { color: ink, boxWidth: 12 } }, tooltip: { enabled: true } },
      scales: {
        x: { ticks: { color: ink, maxRotation: 0, autoSkip: true }, grid: { color: line } },
        y: { ticks: { color: ink }, grid: { color: line }, beginAtZero: true },
      },
    };
  }

  function draw(id, type, labels, datasets, extra) {
    if (typeof window.Chart !== "function") return;
    const options = chartDefaults();
    if (extra) extra(options);
    datasets.forEach((d, i) => {
      const color = d.color || PALETTE[i % PALETTE.length];
      d.borderColor = color;
      d.backgroundColor = color;
      d.spanGaps = true;
      delete d.color;
    });
    const existing = state.charts[id];
    if (existing) {
      existing.data.labels = labels;
      existing.data.datasets = datasets;
      existing.options = options;
      existing.update();
      return;
    }
    state.charts[id] = new window.Chart($("chart-" + id), { type, data: { labels, datasets }, options });
  }

  function values(series) { return series.points.map((p) => (typeof p.value === "number" ? p.value : null)); }
  /** One dataset per name in the points' breakdowns; a bucket without it counts 0, or is a
      gap in the line (`missing` null) for figures such as latency. */
  function breakdown(series, missing) {
    const names = new Set();
    series.points.forEach((p) => Object.keys(p.breakdown || {}).forEach((k) => names.add(k)));
    const absent = missing === undefined ? 0 : missing;
    return Array.from(names).sort().map((name) => ({
      label: name, data: series.points.map((p) => (p.breakdown && typeof p.breakdown[name] === "number" ? p.breakdown[name] : absent)),
    }));
  }
  function describe(id, text) { $("sum-" + id).textContent = text; }
  function sum(list) { return list.reduce((a, b) => a + (typeof b === "number" ? b : 0), 0); }

  function renderCharts(m, s) {
    const labels = m.episodes.points.map((p) => dayLabel(p.start));
    const containment = m.containment.points.map((p) => (typeof p.value === "number" ? Math.round(p.value * 1000) / 10 : null));
    draw("episodes", "bar", labels, [
      { label: "Episodes", data: values(m.episodes), yAxisID: "y", order: 2 },
      { label: "Containment %", data: containment, type: "line", yAxisID: "y1", order: 1 },
    ], (o) => {
      o.scales.y1 = { position: "right", min: 0, max: 100, ticks: { color: css("--ink") }, grid: { drawOnChartArea: false } };
    });
    describe("episodes", sum(values(m.episodes)) + " episodes over the period; containment " + percent(s.containment) + ".");

    const reasons = breakdown(m.escalations);
    draw("escalations", "bar", labels, reasons.length ? reasons : [{ label: "Escalations", data: values(m.escalations) }],
      (o) => { o.scales.x.stacked = true; o.scales.y.stacked = true; });
    describe("escalations", "Escalations by reason: " + (Object.entries(s.escalation.byReason).map(([k, v]) => k + " " + v).join(", ") || "none") + ".");

    draw("csat", "line", labels, [{ label: "Average rating", data: values(m.csat_average) }],
      (o) => { o.scales.y.min = 1; o.scales.y.max = 5; o.scales.y.beginAtZero = false; });
    describe("csat", "Average rating over the period: " + (typeof s.csat.average === "number" ? s.csat.average.toFixed(2) : "none") + " from " + s.csat.count + " ratings.");

    draw("waits", "line", labels, [
      { label: "Median", data: values(m.time_to_claim_p50) },
      { label: "90th percentile", data: values(m.time_to_claim_p90) },
    ]);
    describe("waits", "Time to claim over the period: median " + seconds(s.timeToClaim.p50) + ", 90th percentile " + seconds(s.timeToClaim.p90) + ".");

    const latency = breakdown(m.responder_latency_p95, null);
    draw("latency", "line", labels, latency.length ? latency : [{ label: "All providers", data: values(m.responder_latency_p95) }]);
    describe("latency", "95th percentile latency by provider: " + (s.providers.map((p) => p.provider + " " + (p.latency.p95 === null ? "none" : p.latency.p95 + " ms")).join(", ") || "none") + ".");

    const costs = breakdown(m.cost);
    draw("cost", "bar", labels, costs.length ? costs : [{ label: "Cost", data: values(m.cost) }],
      (o) => { o.scales.x.stacked = true; o.scales.y.stacked = true; });
    describe("cost", "Estimated cost over the period: " + $("card-cost").textContent + ".");
  }

  // --- knowledge gaps --------------------------------------------------------------------------
  function renderGaps(g) {
    els.gapsBody.textContent = "";
    els.gapsNote.textContent = (g.storing ? "" : "Storing questions is off (ANALYTICS_STORE_QUESTIONS); ") +
      count(g.total) + (g.total === 1 ? " unanswered question in " : " unanswered questions in ") +
      count(g.groups.length) + (g.groups.length === 1 ? " group" : " groups") + ", largest first.";
    els.gapsEmpty.hidden = g.groups.length > 0;
    els.gaps.hidden = g.groups.length === 0;
    for (const group of g.groups) {
      const row = el("tr");
      row.dataset.gap = group.id;
      const question = el("td");
      question.appendChild(el("span", "gap__question", group.question));
      if (group.examples.length) question.appendChild(el("span", "gap__examples", "Also: " + group.examples.join(" · ")));
      row.appendChild(question);
      row.appendChild(el("td", "num", count(group.count)));
      row.appendChild(el("td", null, Object.entries(group.reasons).map(([k, v]) => k.replace(/_/g, " ") + (v > 1 ? " ×" + v : "")).join(", ")));
      row.appendChild(el("td", null, dayLabel(group.lastSeen)));
      const action = el("td");
      const button = el("button", "button button--ghost", "Add to knowledge base");
      button.type = "button";
      button.setAttribute("aria-label", "Add to knowledge base: " + group.question);
      button.addEventListener("click", () => openEntryForm(group, button));
      action.appendChild(button);
      row.appendChild(action);
      els.gapsBody.appendChild(row);
    }
  }

  function slug(text) {
    const words = text.toLowerCase().replace(/[^a-z0-9\s]+/g, " ").trim().split(/\s+/).slice(0, 6);
    return (words.join("_") || "entry").slice(0, 60);
  }

  function openEntryForm(group, button) {
    state.gap = { group, button };
    els.kbError.textContent = "";
    els.kbName.value = slug(group.question);
    els.kbTitle.value = group.question.slice(0, 300);
    els.kbQuestions.value = [group.question, ...group.examples].join("\n");
    els.kbAnswer.value = "";
    els.kbDialog.showModal();
    els.kbAnswer.focus();
  }

  els.kbCancel.addEventListener("click", () => els.kbDialog.close());
  els.kbDialog.addEventListener("close", () => {
    if (state.gap && state.gap.button.isConnected) state.gap.button.focus();
  });

  els.kbForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = els.kbName.value.trim();
    const answer = els.kbAnswer.value.trim();
    const questions = els.kbQuestions.value.split("\n").map((q) => q.trim()).filter(Boolean);
    if (!name || !answer) {
      els.kbError.textContent = name ? "Write the answer the bot should give." : "Give the entry a name.";
      (name ? els.kbAnswer : els.kbName).focus();
      return;
    }
    const body = { name, answer, questions };
    if (els.kbTitle.value.trim()) body.title = els.kbTitle.value.trim();
    els.kbSave.disabled = true;
    try {
      await api("POST", "/knowledge/entries", body);
      const { button } = state.gap || {};
      els.kbDialog.close();
      if (button) {
        button.textContent = "Added";
        button.disabled = true;
      }
      announce("Added “" + name + "” to the knowledge base; it is training now.");
    } catch (err) {
      els.kbError.textContent = problemText(err, "The entry could not be added.");
    } finally {
      els.kbSave.disabled = false;
    }
  });

  // --- provider health -------------------------------------------------------------------------
  function renderProviders(health, s) {
    els.providersBody.textContent = "";
    const responders = isObject(health.responders) ? health.responders : {};
    const period = new Map(s.providers.map((p) => [p.provider, p]));
    const names = Object.keys(responders);
    for (const p of s.providers) if (!names.includes(p.provider)) names.push(p.provider);
    for (const name of names) {
      const live = responders[name] || {};
      const figures = period.get(name);
      const row = el("tr");
      const title = el("td");
      title.appendChild(el("strong", null, name));
      if (live.model) title.appendChild(el("span", "gap__examples", live.model));
      row.appendChild(title);
      const stateCell = el("td");
      const stateName = live.state || "unknown";
      const pill = el("span", "state", stateName.replace(/_/g, " "));
      pill.dataset.state = stateName;
      stateCell.appendChild(pill);
      row.appendChild(stateCell);
      row.appendChild(el("td", "num", figures ? count(figures.replies) : "–"));
      row.appendChild(el("td", "num", figures && typeof figures.latency.p95 === "number" ? figures.latency.p95 + " ms" : "–"));
      row.appendChild(el("td", "num", figures ? count(figures.failures) : "–"));
      row.appendChild(el("td", "error-text", live.lastError || "—"));
      els.providersBody.appendChild(row);
    }
  }

  // --- start -----------------------------------------------------------------------------------
  async function resume() {
    const token = tab.get(KEYS.token);
    if (!token) return showSignin();
    state.token = token;
    try {
      const data = await api("GET", "/agents/me");
      if (!isObject(data.agent) || data.agent.role !== "admin") return signedOut("", false);
      startSession(token, data.agent, tab.get(KEYS.expires));
    } catch (err) {
      if (state.token) signedOut(err.status === 401 ? "Please sign in again." : "", err.status === 401);
    }
  }
  resume();
})();
