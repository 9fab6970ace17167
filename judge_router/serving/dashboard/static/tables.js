// The model comparison, the recent decisions and one ledger row in full.

import { PALETTE, histogram, logAxis } from "./charts.js";
import { $, h, showEmpty, table } from "./dom.js";
import { count, ms, score, timestamp, usd } from "./format.js";
import { emptyMessage } from "./views.js";

export function modelsView(answer, state) {
  const scope = answer.group_by ? `within ${answer.group_by} = ${answer.group}` : "over all traffic";
  $("models-scope").textContent = scope;
  const list = $("models-list");
  list.replaceChildren();
  showEmpty("models-empty", answer.models.length ? null : emptyMessage(answer, state));
  if (!answer.models.length) return;
  const costs = answer.models.flatMap((m) => m.histogram.map((b) => b.cost_usd)).filter((c) => c > 0);
  const domain = costs.length ? [Math.min(...costs) / 1.5, Math.max(...costs) * 1.5] : [1e-6, 1];
  const axis = h("div", { class: "chart-box axis" });
  list.append(h("div", { class: "model-row head" },
    h("div", { class: "model-name" }, "model"), h("div", { class: "num" }, "requests"),
    h("div", { class: "num" }, "mean / request"), h("div", { class: "num" }, "median · p90"),
    axis, h("div", { class: "num" }, "mean score")));
  const boxes = [];
  answer.models.forEach((m, i) => {
    const box = h("div", { class: "chart-box" });
    const scored = m.scored ? `${score(m.mean_score)} (${count(m.scored)})` : "not scored";
    list.append(h("div", { class: "model-row", dataModel: m.model },
      h("div", { class: "model-name", title: m.model }, m.model),
      h("div", { class: "num", dataKey: "requests", dataValue: m.requests }, count(m.requests)),
      h("div", { class: "num", dataKey: "mean_cost_usd", dataValue: m.mean_cost_usd }, usd(m.mean_cost_usd)),
      h("div", { class: "num", dataKey: "p50_cost_usd", dataValue: m.p50_cost_usd }, `≈${usd(m.p50_cost_usd)} · ≈${usd(m.p90_cost_usd)}`),
      box,
      h("div", { class: "num", dataKey: "mean_score", dataValue: m.mean_score ?? "" }, scored)));
    boxes.push([box, m, PALETTE[i % PALETTE.length]]);
  });
  // Drawn once the rows are in the page, at the width the layout gave them.
  for (const [box, m, color] of boxes) {
    histogram(box, { bins: m.histogram, domain, color, format: usd, p50: m.p50_cost_usd, p90: m.p90_cost_usd });
  }
  logAxis(axis, { domain, format: usd, title: "USD per request (log)" });
  if (answer.models_folded) list.append(h("p", { class: "note" }, `${answer.models_folded} more models not shown`));
}

const DECISION_COLUMNS = [
  { key: "created_at", label: "time (UTC)", format: timestamp },
  { key: "endpoint", label: "endpoint" },
  { key: "tier", label: "tier", cell: (d) => h("span", { class: `tier tier-${d.tier}` }, d.tier) },
  { key: "model", label: "model" },
  { key: "source", label: "source" },
  { key: "rule", label: "rule", format: (v) => v ?? "–" },
  { key: "status", label: "status" },
  { key: "cost_usd", label: "cost", numeric: true, cell: (d) => (d.status === "routed" ? `≈${usd(d.estimated_cost_usd)}` : usd(d.cost_usd)) },
  { key: "saved_usd", label: "saved", numeric: true, cell: (d) => (d.status === "routed"
    ? `≈${usd(d.estimated_baseline_cost_usd - d.estimated_cost_usd - d.judge_cost_usd)}` : usd(d.saved_usd)) },
  { key: "latency_ms", label: "latency", format: ms, numeric: true },
];

export function decisionsView(answer, state, page) {
  const rows = answer.decisions;
  showEmpty("decisions-empty", rows.length ? null : emptyMessage({ ledger_first_day: state.ledgerFirstDay }, state, "requests"));
  const columns = [...DECISION_COLUMNS, { key: "request_id", label: "ledger row", cell: (d) =>
    h("a", { href: `#decision/${encodeURIComponent(d.request_id)}`, class: "row-link" }, d.request_id.slice(0, 11) + "…") }];
  table($("decisions-table"), columns, rows, (d) => ({ dataRequestId: d.request_id }));
  $("newer").disabled = page === 0;
  $("older").disabled = !answer.next;
  $("page-note").textContent = rows.length ? `page ${page + 1} · ${rows.length} rows` : "";
}

function value(v) {
  if (v === null || v === undefined) return h("span", { class: "muted" }, "null");
  if (typeof v === "object") return h("pre", {}, JSON.stringify(v, null, 2));
  if (typeof v === "number" && !Number.isInteger(v)) return String(v);
  return String(v);
}

export function detailView(answer) {
  const d = answer.decision;
  const rows = Object.entries(d).map(([key, v]) => h("tr", { dataField: key }, h("th", { scope: "row" }, key), h("td", {}, value(v))));
  const outcomes = answer.outcomes.length
    ? answer.outcomes.map((o) => h("li", {}, `${o.source} · ${o.model} · score ${score(o.score)}${o.reason ? ` — ${o.reason}` : ""}`))
    : [h("li", { class: "muted" }, "no outcome rows (not graded, no feedback)")];
  const prompt = "prompt_text" in d ? null
    : h("p", { class: "note" }, "Prompt text is not shown: the service does not store it (ledger.store_prompts is off).");
  $("detail-body").replaceChildren(
    h("p", { class: "summary" }, `${d.tier} → ${d.model} (${d.source}${d.cached ? ", cached verdict" : ""}), `
      + (d.status === "routed" ? "a /route decision: no model was called" : `cost ${usd(d.cost_usd)}, saved ${usd(d.saved_usd)}`)),
    prompt,
    h("table", { class: "fields" }, h("tbody", {}, rows)),
    h("h3", {}, "Outcomes"),
    h("ul", { class: "outcomes" }, outcomes),
  );
}
