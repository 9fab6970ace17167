// The spend, routing-mix and group views: drawn from their endpoints' answers.

import { PALETTE, barRows, legend, lineChart, stackedBars } from "./charts.js";
import { $, h, kpi, showEmpty, table } from "./dom.js";
import { count, countShort, pct, ratio, share, usd, usdShort } from "./format.js";

export const TIERS = [
  { key: "low", name: "low", color: "#2f9e44" },
  { key: "medium", name: "medium", color: "#f59f00" },
  { key: "high", name: "high", color: "#e03131" },
];
const SPEND = [
  { key: "baseline_spend_usd", name: "baseline (no routing)", color: "#868e96" },
  { key: "realised_spend_usd", name: "realised", color: "#1c7ed6" },
  { key: "judge_spend_usd", name: "judge", color: "#ae3ec9" },
];
const SOURCE_COLORS = { llm: "#1c7ed6", cache: "#2f9e44", local: "#0c8599", rule: "#f59f00",
  heuristic: "#e8590c", forced: "#868e96", passthrough: "#495057", budget: "#e03131", fallback: "#c2255c" };

export function emptyMessage(answer, state, what = "proxied requests") {
  if (!answer.ledger_first_day) return `No ${what} yet — send one to /v1/chat/completions.`;
  const narrowed = state.since || state.until || state.filters.length;
  return narrowed
    ? `No ${what} in this range${state.filters.length ? " with these filters" : ""} — widen the range or remove a filter.`
    : `No ${what} yet — send one to /v1/chat/completions.`;
}

function unit(answer) {
  return answer.window.bucket === "hour" ? "hour" : "day";
}

export function spendView(answer, state) {
  const t = answer.totals;
  $("spend-kpis").replaceChildren(
    kpi("realised_spend_usd", "Realised spend", t.realised_spend_usd, usd),
    kpi("baseline_spend_usd", "Baseline (no routing)", t.baseline_spend_usd, usd),
    kpi("judge_spend_usd", "Judge spend", t.judge_spend_usd, usd),
    kpi("quality_spend_usd", "Quality spend", t.quality_spend_usd, usd, "grading, shadow tests"),
    kpi("net_savings_usd", "Net savings", t.net_savings_usd, usd),
    kpi("savings_pct", "Saved", t.savings_pct, (v) => pct(v), "of the baseline"),
    kpi("proxied", "Proxied requests", t.proxied, count),
  );
  document.querySelectorAll(".bucket-name").forEach((node) => { node.textContent = unit(answer); });
  const empty = t.proxied === 0;
  showEmpty("spend-empty", empty ? emptyMessage(answer, state) : null);
  const buckets = answer.series.map((p) => p.bucket);
  const perUnit = `USD per ${unit(answer)}`;
  const money = (v, long) => (long ? usd(v) : usdShort(v));
  $("spend-legend").replaceChildren();
  legend($("spend-legend"), SPEND);
  lineChart($("spend-chart"), {
    buckets, yFormat: money, yTitle: perUnit, xTitle: `UTC ${unit(answer)}`,
    series: SPEND.map((s) => ({ ...s, values: answer.series.map((p) => p[s.key]) })),
  });
  lineChart($("savings-chart"), {
    buckets, yFormat: money, yTitle: "USD, cumulative", xTitle: `UTC ${unit(answer)}`, area: true,
    series: [{ key: "cumulative_net_savings_usd", name: "net savings, cumulative", color: "#2f9e44",
      values: answer.series.map((p) => p.cumulative_net_savings_usd) }],
  });
}

export function mixView(answer, state) {
  const t = answer.totals;
  $("mix-kpis").replaceChildren(
    kpi("requests", "Requests", t.requests, count),
    kpi("judged", "Judged", t.judged, count, "not forced, passthrough, rule or budget"),
    kpi("cache_hit_rate", "Cache hit rate", t.cache_hit_rate, (v) => share(v), "of judged requests"),
    kpi("local_share", "Local judge", t.local_share, (v) => share(v), "of judged requests"),
    kpi("judge_roi", "Judge ROI", t.judge_roi, ratio, "gross savings per judge $"),
  );
  showEmpty("mix-empty", t.requests === 0 ? emptyMessage(answer, state, "requests") : null);
  const buckets = answer.series.map((p) => p.bucket);
  const perUnit = `requests per ${unit(answer)}`;
  const fmt = (v, long) => (long ? count(v) : countShort(v));
  const tierValues = Object.fromEntries(answer.series.map((p) => [p.bucket, p.by_tier]));
  $("tier-legend").replaceChildren();
  legend($("tier-legend"), TIERS);
  stackedBars($("tier-chart"), { buckets, keys: TIERS, values: tierValues, yFormat: fmt, yTitle: perUnit, xTitle: `UTC ${unit(answer)}` });
  const models = answer.models.map((name, i) => ({ key: name, name, color: PALETTE[i % PALETTE.length] }));
  const modelValues = Object.fromEntries(answer.series.map((p) => [p.bucket, p.by_model]));
  $("model-legend").replaceChildren();
  legend($("model-legend"), models);
  stackedBars($("model-chart"), { buckets, keys: models, values: modelValues, yFormat: fmt, yTitle: perUnit, xTitle: `UTC ${unit(answer)}` });
  const total = Object.values(answer.verdicts_by_source).reduce((a, b) => a + b, 0);
  const rows = Object.entries(answer.verdicts_by_source).map(([source, n]) => ({
    label: source, values: [{ key: "requests", value: n, color: SOURCE_COLORS[source] || "#495057" }],
  }));
  barRows($("source-chart"), {
    rows, title: "requests", format: (v, long) => (long ? `${count(v)} (${share(total ? v / total : null)})` : countShort(v)),
  });
}

const GROUP_COLUMNS = [
  { key: "group", label: "group" },
  { key: "requests", label: "requests", format: count, numeric: true },
  { key: "proxied", label: "proxied", format: count, numeric: true },
  { key: "realised_spend_usd", label: "realised", format: usd, numeric: true },
  { key: "baseline_spend_usd", label: "baseline", format: usd, numeric: true },
  { key: "judge_spend_usd", label: "judge", format: usd, numeric: true },
  { key: "net_savings_usd", label: "net savings", format: usd, numeric: true },
  { key: "savings_pct", label: "saved", format: (v) => pct(v), numeric: true },
  { key: "spend_per_request_usd", label: "spend / request", format: usd, numeric: true },
  { key: "estimated_spend_per_request_usd", label: "/route estimate / request", format: usd, numeric: true },
];

export function groupsView(answer, state, compare) {
  $("groups-key").textContent = answer.group_by;
  const groups = answer.groups;
  showEmpty("groups-empty", groups.length ? null : emptyMessage(answer, state, "requests"));
  const shown = groups.slice(0, 20);
  const money = (v, long) => (long ? usd(v) : usdShort(v));
  $("groups-legend").replaceChildren();
  legend($("groups-legend"), [{ name: "realised", color: "#1c7ed6" }, { name: "baseline (no routing)", color: "#868e96" }]);
  barRows($("groups-chart"), {
    rows: shown.map((g) => ({ label: g.group, values: [
      { key: "realised", value: g.realised_spend_usd, color: "#1c7ed6" },
      { key: "baseline", value: g.baseline_spend_usd, color: "#868e96" },
    ] })),
    format: money, title: groups.length > 20 ? `USD (the 20 largest of ${groups.length} groups)` : "USD",
  });
  const columns = [...GROUP_COLUMNS, { key: "compare", label: "", cell: (g) => (g.group === "(other)" ? "" :
    h("a", { href: "#models", class: "compare", dataGroup: g.group, onclick: (event) => { event.preventDefault(); compare(g.group); } }, "models →")) }];
  table($("groups-table"), columns, groups, (g) => ({ dataGroup: g.group }));
  if (answer.groups_folded) {
    $("groups-table").append(h("caption", {}, `(other) adds up ${answer.groups_folded} smaller groups`));
  }
}
