// The dashboard's charts, drawn as SVG by this file alone (no library, nothing fetched). Each
// chart is drawn at its container's width and drawn again when that changes; every mark carries
// its number in data-value (and a <title> tooltip), so what is drawn can be read back.

import { bucketLabel } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#1c7ed6", "#e8590c", "#2f9e44", "#ae3ec9", "#f59f00", "#0c8599",
  "#e64980", "#5c940d", "#868e96"];

export function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function text(parent, x, y, content, attributes = {}) {
  const node = el("text", { x, y, ...attributes }, parent);
  node.textContent = content;
  return node;
}

function tip(node, content) {
  el("title", {}, node).textContent = content;
}

// Round tick values covering [0, max] (or [min, max]): 1, 2 or 5 times a power of ten apart.
export function ticks(min, max, wanted = 5) {
  if (max === min) max = min + 1;
  const raw = (max - min) / wanted;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const first = Math.floor(min / step) * step;
  const last = Math.ceil(max / step) * step;  // the top tick is at or above the largest value
  const found = [];
  for (let i = 0; first + i * step <= last + step * 1e-9; i += 1) found.push(+(first + i * step).toPrecision(12));
  return found;
}

// Labels for at most `room` of the buckets, evenly spaced, always the first.
function xLabels(buckets, room) {
  const every = Math.max(1, Math.ceil(buckets.length / room));
  return buckets.map((bucket, i) => (i % every === 0 ? bucket : null));
}

function frame(container, height, margin) {
  container.replaceChildren();
  const width = Math.max(280, Math.floor(container.clientWidth || 600));
  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart",
  }, container);
  return { svg, width, height, inner: {
    x: margin.left, y: margin.top,
    w: width - margin.left - margin.right, h: height - margin.top - margin.bottom,
  } };
}

function axes(svg, inner, yTicks, yScale, yFormat, yTitle, buckets, xScale, xTitle) {
  const grid = el("g", { class: "grid" }, svg);
  for (const value of yTicks) {
    const y = yScale(value);
    el("line", { x1: inner.x, x2: inner.x + inner.w, y1: y, y2: y }, grid);
    text(grid, inner.x - 6, y + 4, yFormat(value), { class: "tick", "text-anchor": "end" });
  }
  text(svg, 12, inner.y + inner.h / 2, yTitle, {
    class: "axis-title", transform: `rotate(-90 12 ${inner.y + inner.h / 2})`, "text-anchor": "middle",
  });
  const hourly = buckets.length > 0 && buckets[0].includes("T");
  const room = Math.max(2, Math.floor(inner.w / (hourly ? 90 : 64)));
  xLabels(buckets, room).forEach((bucket, i) => {
    if (bucket === null) return;
    const previous = buckets[i - 1];
    const newDay = !previous || previous.slice(0, 10) !== bucket.slice(0, 10);
    text(svg, xScale(i), inner.y + inner.h + 16, bucketLabel(bucket, newDay || i === 0), {
      class: "tick", "text-anchor": "middle",
    });
  });
  text(svg, inner.x + inner.w, inner.y + inner.h + 30, xTitle, { class: "axis-title", "text-anchor": "end" });
}

export function legend(container, entries) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const { name, color } of entries) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.dataset.color = color;
    swatch.style.background = color;  // CSSOM, which the page's CSP allows
    item.append(swatch, document.createTextNode(name));
    list.appendChild(item);
  }
  container.appendChild(list);
}

// Lines over buckets: series [{key, name, color, values: [number]}].
export function lineChart(container, { buckets, series, yFormat, yTitle, xTitle, height = 260, area = false }) {
  const margin = { top: 12, right: 16, bottom: 38, left: 72 };
  const { svg, inner } = frame(container, height, margin);
  const all = series.flatMap((s) => s.values);
  const low = Math.min(0, ...all);
  const high = Math.max(0, ...all);
  const yTicks = ticks(low, high);
  const [bottom, top] = [yTicks[0], yTicks[yTicks.length - 1]];
  const yScale = (v) => inner.y + inner.h - ((v - bottom) / (top - bottom || 1)) * inner.h;
  const step = buckets.length > 1 ? inner.w / (buckets.length - 1) : 0;
  const xScale = (i) => inner.x + (buckets.length > 1 ? i * step : inner.w / 2);
  axes(svg, inner, yTicks, yScale, yFormat, yTitle, buckets, xScale, xTitle);
  if (low < 0) el("line", { class: "zero", x1: inner.x, x2: inner.x + inner.w, y1: yScale(0), y2: yScale(0) }, svg);
  for (const s of series) {
    const group = el("g", { class: "series", "data-series": s.key }, svg);
    const points = s.values.map((v, i) => `${xScale(i).toFixed(1)},${yScale(v).toFixed(1)}`);
    if (area && points.length) {
      const base = yScale(Math.max(bottom, 0)).toFixed(1);
      el("polygon", {
        points: `${xScale(0).toFixed(1)},${base} ${points.join(" ")} ${xScale(s.values.length - 1).toFixed(1)},${base}`,
        fill: s.color, "fill-opacity": 0.12, stroke: "none",
      }, group);
    }
    el("polyline", { points: points.join(" "), fill: "none", stroke: s.color, "stroke-width": 2 }, group);
    const radius = buckets.length > 60 ? 1.5 : 3;
    s.values.forEach((v, i) => {
      const dot = el("circle", {
        cx: xScale(i), cy: yScale(v), r: radius, fill: s.color,
        "data-bucket": buckets[i], "data-value": v,
      }, group);
      tip(dot, `${s.name}, ${bucketLabel(buckets[i])}: ${yFormat(v, true)}`);
    });
  }
  return svg;
}

// Stacked bars over buckets: keys [{key, name, color}], rows [{bucket, values: {key: n}}].
export function stackedBars(container, { buckets, keys, values, yFormat, yTitle, xTitle, height = 260 }) {
  const margin = { top: 12, right: 16, bottom: 38, left: 64 };
  const { svg, inner } = frame(container, height, margin);
  const totals = buckets.map((b) => keys.reduce((sum, k) => sum + (values[b]?.[k.key] || 0), 0));
  const yTicks = ticks(0, Math.max(1, ...totals));
  const top = yTicks[yTicks.length - 1];
  const yScale = (v) => inner.y + inner.h - (v / top) * inner.h;
  const band = inner.w / Math.max(1, buckets.length);
  const xScale = (i) => inner.x + band * (i + 0.5);
  axes(svg, inner, yTicks, yScale, yFormat, yTitle, buckets, xScale, xTitle);
  const width = Math.max(1, band * 0.78);
  buckets.forEach((bucket, i) => {
    let running = 0;
    for (const k of keys) {
      const v = values[bucket]?.[k.key] || 0;
      if (!v) continue;
      const rect = el("rect", {
        x: xScale(i) - width / 2, y: yScale(running + v), width, height: Math.max(0.5, yScale(running) - yScale(running + v)),
        fill: k.color, "data-bucket": bucket, "data-key": k.key, "data-value": v,
      }, svg);
      tip(rect, `${k.name}, ${bucketLabel(bucket)}: ${yFormat(v, true)}`);
      running += v;
    }
  });
  return svg;
}

// Horizontal bars, one row per item: rows [{label, values: [{key, value, color}]}], side by side.
export function barRows(container, { rows, format, title, rowHeight = 26 }) {
  const margin = { top: 8, right: 150, bottom: 30, left: 150 };
  const height = margin.top + margin.bottom + rows.length * rowHeight;
  const { svg, inner } = frame(container, height, margin);
  const max = Math.max(0, ...rows.flatMap((r) => r.values.map((v) => v.value)));
  const xTicks = ticks(0, max || 1, Math.max(2, Math.floor(inner.w / 110)));
  const right = xTicks[xTicks.length - 1];
  const xScale = (v) => inner.x + (v / right) * inner.w;
  const grid = el("g", { class: "grid" }, svg);
  for (const value of xTicks) {
    el("line", { x1: xScale(value), x2: xScale(value), y1: inner.y, y2: inner.y + inner.h }, grid);
    text(grid, xScale(value), inner.y + inner.h + 14, format(value), { class: "tick", "text-anchor": "middle" });
  }
  text(svg, inner.x + inner.w, inner.y + inner.h + 28, title, { class: "axis-title", "text-anchor": "end" });
  rows.forEach((row, i) => {
    const y = inner.y + i * rowHeight;
    const label = row.label.length > 22 ? `${row.label.slice(0, 21)}…` : row.label;
    tip(text(svg, inner.x - 8, y + rowHeight / 2 + 4, label, { class: "label", "text-anchor": "end" }), row.label);
    const thickness = (rowHeight - 8) / row.values.length;
    row.values.forEach((v, j) => {
      const rect = el("rect", {
        x: inner.x, y: y + 4 + j * thickness, width: Math.max(0.5, xScale(v.value) - inner.x),
        height: thickness - 1, fill: v.color, "data-label": row.label, "data-key": v.key, "data-value": v.value,
      }, svg);
      tip(rect, `${row.label}, ${v.key}: ${format(v.value, true)}`);
    });
    // Every value of the row at its end, in the order drawn: "$188 / $1,405".
    text(svg, xScale(Math.max(...row.values.map((v) => v.value))) + 6, y + rowHeight / 2 + 4,
      row.values.map((v) => format(v.value, true)).join(" / "), { class: "value" });
  });
  return svg;
}

// One model's cost histogram on a log axis shared by every model of the comparison.
export function histogram(container, { bins, domain, color, format, height = 44, p50 = null, p90 = null }) {
  const margin = { top: 4, right: 8, bottom: 4, left: 8 };
  const { svg, inner } = frame(container, height, margin);
  const [lo, hi] = domain.map((v) => Math.log10(v));
  const xScale = (v) => inner.x + ((Math.log10(v) - lo) / (hi - lo || 1)) * inner.w;
  const most = Math.max(1, ...bins.map((b) => b.requests));
  const width = Math.max(2, inner.w / ((hi - lo + 1) * 9) - 1);
  el("line", { class: "baseline", x1: inner.x, x2: inner.x + inner.w, y1: inner.y + inner.h, y2: inner.y + inner.h }, svg);
  for (const bin of bins) {
    if (bin.cost_usd <= 0) continue;  // no cost (an error): counted in the table, not on a log axis
    const h = Math.max(1, (bin.requests / most) * inner.h);
    const rect = el("rect", {
      x: xScale(bin.cost_usd) - width / 2, y: inner.y + inner.h - h, width, height: h, fill: color,
      "data-cost": bin.cost_usd, "data-value": bin.requests,
    }, svg);
    tip(rect, `≈${format(bin.cost_usd, true)} per request: ${bin.requests.toLocaleString("en-US")} requests`);
  }
  for (const [value, name] of [[p50, "median"], [p90, "90th percentile"]]) {
    if (!value || value <= 0) continue;
    const marker = el("line", { class: `marker ${name === "median" ? "p50" : "p90"}`, x1: xScale(value), x2: xScale(value), y1: inner.y, y2: inner.y + inner.h }, svg);
    tip(marker, `${name}: ≈${format(value, true)}`);
  }
  return svg;
}

// The shared log axis under the histograms: a tick per power of ten.
export function logAxis(container, { domain, format, title }) {
  const margin = { top: 0, right: 8, bottom: 0, left: 8 };
  const { svg, inner } = frame(container, 34, margin);
  const [lo, hi] = domain.map((v) => Math.log10(v));
  const xScale = (v) => inner.x + ((Math.log10(v) - lo) / (hi - lo || 1)) * inner.w;
  for (let power = Math.ceil(lo); power <= Math.floor(hi); power += 1) {
    const x = xScale(10 ** power);
    el("line", { class: "tick-mark", x1: x, x2: x, y1: 0, y2: 5 }, svg);
    text(svg, x, 16, format(10 ** power), { class: "tick", "text-anchor": "middle" });
  }
  text(svg, inner.x + inner.w, 30, title, { class: "axis-title", "text-anchor": "end" });
  return svg;
}
