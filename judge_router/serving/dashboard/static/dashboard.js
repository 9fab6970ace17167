// The dashboard's controller: the state (in the page's URL, so a view can be linked to), the
// controls, the sign-in, and fetching each view's data from /dashboard/api/ (same origin only).

import { $, h } from "./dom.js";
import { simulationView } from "./simulator.js";
import { decisionsView, detailView, modelsView } from "./tables.js";
import { groupsView, mixView, spendView } from "./views.js";

const API = "/dashboard/api";
const VIEWS = ["spend", "mix", "groups", "models", "decisions", "simulator"];
const NOT_FILTERS = ["since", "until", "group_by", "group"];
const PREFERRED_GROUPS = ["metadata.task_type", "metadata.team", "api_key", "rule", "arm", "tier"];

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, params = null, options = {}) {
  const query = params ? `?${params}` : "";
  const response = await fetch(`${API}/${path}${query}`, {
    credentials: "same-origin", headers: { accept: "application/json", ...(options.headers || {}) }, ...options,
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, body?.error?.message || `${response.status} ${response.statusText}`);
  }
  return body;
}

const state = {
  since: null, until: null, groupBy: null, group: null, filters: [], view: "spend",
  cursors: [null], page: 0, dimensions: null, answers: {}, ledgerFirstDay: null,
};

function readLocation() {
  const params = new URLSearchParams(window.location.search);
  state.since = params.get("since") || null;
  state.until = params.get("until") || null;
  state.groupBy = params.get("group_by") || null;
  state.group = params.get("group");
  state.filters = [...params.entries()].filter(([key]) => !NOT_FILTERS.includes(key));
  const hash = window.location.hash.slice(1);
  const view = hash.split("/")[0];
  state.view = VIEWS.includes(view) ? view : (view === "decision" ? "decisions" : "spend");
}

function writeLocation() {
  const params = new URLSearchParams();
  if (state.since) params.set("since", state.since);
  if (state.until) params.set("until", state.until);
  if (state.groupBy) params.set("group_by", state.groupBy);
  if (state.group !== null && state.group !== undefined) params.set("group", state.group);
  for (const [key, value] of state.filters) params.append(key, value);
  const query = params.toString();
  const hash = window.location.hash || `#${state.view}`;
  history.replaceState(null, "", `/dashboard${query ? `?${query}` : ""}${hash}`);
}

// The query each endpoint takes: the window, and the filters (and the group where it counts).
function query({ group = false, filters = true } = {}) {
  const params = new URLSearchParams();
  if (state.since) params.set("since", state.since);
  if (state.until) params.set("until", state.until);
  if (group && state.groupBy) params.set("group_by", state.groupBy);
  if (filters) for (const [key, value] of state.filters) params.append(key, value);
  return params;
}

// -- the controls ------------------------------------------------------------------------------

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function syncControls() {
  $("since").value = state.since ? state.since.slice(0, 10) : "";
  // `until` is excluded: the last day shown is the one before it.
  $("until").value = state.until ? isoDay(new Date(Date.parse(`${state.until.slice(0, 10)}T00:00:00Z`) - 86400000)) : "";
  const groupBy = $("group-by");
  const keys = state.dimensions?.group_by || ["tier", "model", "day", "rule", "arm"];
  groupBy.replaceChildren(...keys.map((key) => h("option", { value: key, selected: key === state.groupBy }, key)));
  const filterKey = $("filter-key");
  const filterable = keys.filter((key) => key !== "day");
  const chosen = filterKey.value;
  filterKey.replaceChildren(h("option", { value: "" }, "key…"), ...filterable.map((key) => h("option", { value: key, selected: key === chosen }, key)));
  fillValues();
  $("filters").replaceChildren(...state.filters.map(([key, value], i) => h("li", { class: "chip", dataKey: key, dataValue: value },
    `${key} = ${value}`, h("button", { type: "button", "aria-label": `remove ${key} = ${value}`, onclick: () => {
      state.filters.splice(i, 1);
      changed();
    } }, "×"))));
  document.querySelectorAll("[data-preset]").forEach((button) => button.classList.toggle("active", presetOf() === button.dataset.preset));
}

function fillValues() {
  const key = $("filter-key").value;
  const values = (state.dimensions?.values || {})[key] || [];
  $("filter-value").replaceChildren(h("option", { value: "" }, "value…"),
    ...values.map((v) => h("option", { value: v.value }, v.requests === null ? v.value : `${v.value} (${v.requests.toLocaleString("en-US")})`)));
}

function presetOf() {
  if (!state.since && !state.until) return "all";
  return state.preset || null;
}

function preset(name) {
  const now = new Date();
  state.until = null;
  state.preset = name;
  if (name === "all") state.since = null;
  else if (name === "24h") state.since = new Date(now.getTime() - 86400000).toISOString().slice(0, 13) + ":00:00Z";
  else {
    const days = Number(name.replace("d", ""));
    state.since = isoDay(new Date(now.getTime() - (days - 1) * 86400000));
  }
  changed();
}

function changed() {
  state.answers = {};
  state.cursors = [null];
  state.page = 0;
  writeLocation();
  syncControls();
  load();
}

function bindControls() {
  $("since").addEventListener("change", (event) => {
    state.preset = null;
    state.since = event.target.value || null;
    changed();
  });
  $("until").addEventListener("change", (event) => {
    state.preset = null;
    const day = event.target.value;
    state.until = day ? isoDay(new Date(Date.parse(`${day}T00:00:00Z`) + 86400000)) : null;
    changed();
  });
  document.querySelectorAll("[data-preset]").forEach((button) => button.addEventListener("click", () => preset(button.dataset.preset)));
  $("group-by").addEventListener("change", (event) => {
    state.groupBy = event.target.value;
    state.group = null;
    changed();
  });
  $("filter-key").addEventListener("change", fillValues);
  $("add-filter").addEventListener("click", () => {
    const key = $("filter-key").value;
    const value = $("filter-value").value;
    if (!key || !value) return;
    if (!state.filters.some(([k, v]) => k === key && v === value)) state.filters.push([key, value]);
    changed();
  });
  $("controls").addEventListener("submit", (event) => event.preventDefault());
  $("newer").addEventListener("click", () => { state.page -= 1; load(); });
  $("older").addEventListener("click", () => {
    state.cursors[state.page + 1] = state.answers.decisions.next;
    state.page += 1;
    load();
  });
  $("load-example").addEventListener("click", async () => {
    $("mix-text").value = (await api("simulator/example")).yaml;
  });
  $("run-sim").addEventListener("click", simulate);
  $("sign-out").addEventListener("click", async () => {
    await api("session", null, { method: "DELETE" });
    window.location.reload();
  });
  window.addEventListener("hashchange", () => { readLocation(); showView(); load(); });
  let pending = null;
  new ResizeObserver(() => {  // charts are drawn at their box's width: draw again on a resize
    clearTimeout(pending);
    pending = setTimeout(() => render(), 150);
  }).observe($("app"));
}

// -- the views ---------------------------------------------------------------------------------

function showView() {
  for (const section of document.querySelectorAll("section.view")) section.hidden = section.dataset.view !== state.view;
  for (const tab of document.querySelectorAll(".tabs a")) tab.classList.toggle("active", tab.dataset.view === state.view);
  const hash = window.location.hash.slice(1);
  $("detail").hidden = !hash.startsWith("decision/");
  if (hash.startsWith("decision/")) openDetail(decodeURIComponent(hash.slice("decision/".length)));
}

function rangeNote(answer) {
  const window_ = answer?.window;
  if (!window_) return "";
  const from = window_.since ? window_.since.replace("T00:00:00+00:00", "").replace(":00:00+00:00", ":00").replace("T", " ") : "the first request";
  const to = window_.until ? window_.until.replace("T00:00:00+00:00", "").replace(":00:00+00:00", ":00").replace("T", " ") : "now";
  const read = window_.read === "rows" ? " · read from the ledger's rows (slower: two row-only keys, or a nested metadata key)" : "";
  return `From ${from} to ${to} (UTC, end excluded)${window_.bucket ? `, by ${window_.bucket}` : ""}${read}`;
}

function compare(group) {
  state.group = group;
  writeLocation();
  window.location.hash = "#models";
}

const LOADERS = {
  spend: () => api("spend", query()),
  mix: () => api("mix", query()),
  groups: () => api("groups", query({ group: true })),
  models: () => {
    const params = query({ group: state.group !== null });
    if (state.group !== null && state.groupBy) params.set("group", state.group);
    return api("models", params);
  },
  decisions: () => {
    const params = query();
    params.set("limit", "25");
    const cursor = state.cursors[state.page];
    if (cursor) params.set("before", cursor);
    return api("decisions", params);
  },
};

function render() {
  const answer = state.answers[state.view];
  if (!answer || $("app").hidden) return;
  const draw = { spend: spendView, mix: mixView, groups: (a, s) => groupsView(a, s, compare),
    models: modelsView, decisions: (a, s) => decisionsView(a, s, state.page), simulator: simulationView };
  draw[state.view](answer, state);
  $("range-note").textContent = state.view === "simulator" ? "" : rangeNote(answer);
  // A count of the views drawn, so a script (the tests) can wait for the next one.
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  document.body.dataset.rendered = state.view;
}

async function load() {
  const view = state.view;
  const error = $("view-error");
  error.hidden = true;
  if (view === "simulator") {  // first shown: the example, simulated
    if (!$("mix-text").value) {
      $("mix-text").value = (await api("simulator/example")).yaml;
      await simulate();
    }
    render();
    return;
  }
  document.body.classList.add("loading");
  try {
    const answer = await LOADERS[view]();
    if (answer.ledger_first_day !== undefined) state.ledgerFirstDay = answer.ledger_first_day;
    state.answers[view] = answer;
    if (view === state.view) render();
  } catch (exc) {
    if (exc.status === 401) { signIn(); return; }
    error.hidden = false;
    error.textContent = exc.message;
    document.body.dataset.failures = String(Number(document.body.dataset.failures || 0) + 1);
  } finally {
    document.body.classList.remove("loading");
  }
}

async function simulate() {
  $("sim-error").textContent = "";
  try {
    state.answers.simulator = await api("simulate", null, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ yaml: $("mix-text").value }),
    });
    render();
  } catch (exc) {
    $("sim-error").textContent = exc.message;
  }
}

async function openDetail(requestId) {
  $("detail-body").replaceChildren(h("p", { class: "note" }, "Loading…"));
  try {
    detailView(await api(`decisions/${encodeURIComponent(requestId)}`));
  } catch (exc) {
    $("detail-body").replaceChildren(h("p", { class: "error" }, exc.message));
  }
}

// -- signing in and starting -------------------------------------------------------------------

function signIn(message = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("signin-key").focus();
}

async function start() {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("session", null, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: $("signin-key").value }),
      });
      $("signin-key").value = "";
      window.location.reload();
    } catch (exc) {
      $("signin-error").textContent = exc.message;
    }
  });
  const who = await api("session");
  if (!who.signed_in) { signIn(); return; }
  $("who").textContent = who.keys_required ? `signed in as ${who.key_id}` : "no keys configured: open to loopback";
  $("sign-out").hidden = !who.keys_required;
  readLocation();
  bindControls();
  $("signin").hidden = true;
  $("app").hidden = false;
  try {
    state.dimensions = await api("dimensions", query({ filters: false }));
  } catch (exc) {
    if (exc.status === 401 || exc.status === 403) { signIn(exc.message); return; }
    state.dimensions = null;
  }
  if (!state.groupBy) {
    const offered = state.dimensions?.group_by || [];
    state.groupBy = PREFERRED_GROUPS.find((key) => offered.includes(key) && (state.dimensions.values[key] || []).length) || "tier";
  }
  writeLocation();
  syncControls();
  showView();
  load();
}

start();
