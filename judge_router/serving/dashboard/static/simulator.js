// The savings simulator: a traffic mix (YAML) priced by the service, as `judge-router simulate`.

import { barRows, legend } from "./charts.js";
import { $, kpi, table } from "./dom.js";
import { count, pct, ratio, usd, usdShort } from "./format.js";

const PARTS = [
  { key: "before_usd", name: "before (baseline)", color: "#868e96" },
  { key: "after_usd", name: "after (routed)", color: "#1c7ed6" },
  { key: "judge_usd", name: "judge", color: "#ae3ec9" },
];

export function simulationView(result) {
  $("sim-results").hidden = false;
  $("sim-kpis").replaceChildren(
    kpi("before_usd", "Before routing", result.before_usd, usd, "a month, all on the baseline"),
    kpi("after_with_judge_usd", "After, with the judge", result.after_with_judge_usd, usd),
    kpi("judge_usd", "Judge", result.judge_usd, usd),
    kpi("net_saved_usd", "Net saved", result.net_saved_usd, usd, "a month"),
    kpi("net_saved_pct", "Net saved", result.net_saved_pct, (v) => pct(v)),
    kpi("judge_roi", "Judge ROI", result.judge_roi, ratio),
  );
  $("sim-legend").replaceChildren();
  legend($("sim-legend"), PARTS);
  barRows($("sim-chart"), {
    rows: result.types.map((t) => ({ label: `${t.name} (${t.tier})`,
      values: PARTS.map((p) => ({ key: p.key, value: t[p.key], color: p.color })) })),
    format: (v, long) => (long ? usd(v) : usdShort(v)), title: "USD a month",
  });
  table($("sim-table"), [
    { key: "name", label: "type" }, { key: "tier", label: "tier" },
    { key: "requests", label: "requests", format: count, numeric: true },
    { key: "before_usd", label: "before", format: usd, numeric: true },
    { key: "after_usd", label: "after", format: usd, numeric: true },
    { key: "judge_usd", label: "judge", format: usd, numeric: true },
  ], [...result.types, { name: "total", tier: "", requests: result.requests_per_month,
    before_usd: result.before_usd, after_usd: result.after_usd, judge_usd: result.judge_usd }],
  (t) => ({ dataType: t.name }));
}
