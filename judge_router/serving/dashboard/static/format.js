// Numbers as people read them: dollars with the precision they need, counts with separators,
// shares as percentages. Every function takes null (a ratio over nothing) and shows "–".

const DASH = "–";

export function usd(value) {
  if (value === null || value === undefined) return DASH;
  const size = Math.abs(value);
  if (size === 0) return "$0.00";
  if (size >= 1) {
    return (value < 0 ? "-$" : "$") + size.toLocaleString("en-US", {
      minimumFractionDigits: 2, maximumFractionDigits: 2,
    });
  }
  // Below a dollar: three significant digits, so $0.000123 is not shown as $0.00.
  const digits = Math.min(10, Math.max(2, 2 - Math.floor(Math.log10(size)) + 1));
  return (value < 0 ? "-$" : "$") + size.toFixed(digits).replace(/(\.\d*?[1-9])0+$/, "$1");
}

// Axis labels: short ($1.2k, $0.004), the unit is on the axis title.
export function usdShort(value) {
  const size = Math.abs(value);
  if (size === 0) return "$0";
  if (size >= 1e6) return `$${(value / 1e6).toFixed(1)}M`;
  if (size >= 1e3) return `$${(value / 1e3).toFixed(1)}k`;
  if (size >= 1) return `$${value.toFixed(size >= 10 ? 0 : 1)}`;
  return `$${value.toPrecision(1)}`.replace(/e-(\d)$/, "e-0$1");
}

export function count(value) {
  if (value === null || value === undefined) return DASH;
  return Math.round(value).toLocaleString("en-US");
}

export function countShort(value) {
  const size = Math.abs(value);
  if (size >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (size >= 1e3) return `${(value / 1e3).toFixed(size >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(value));
}

export function pct(value, digits = 1) {
  if (value === null || value === undefined) return DASH;
  return `${value.toFixed(digits)}%`;
}

export function share(value, digits = 1) {  // a ratio 0..1 as a percentage
  return value === null || value === undefined ? DASH : pct(100 * value, digits);
}

export function ratio(value) {
  if (value === null || value === undefined) return DASH;
  return `${value.toLocaleString("en-US", { maximumFractionDigits: 1 })}×`;
}

export function ms(value) {
  return value === null || value === undefined ? DASH : `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

export function score(value) {
  return value === null || value === undefined ? DASH : value.toFixed(2);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// A bucket key ("2026-11-05" or "2026-11-05T13") as an axis label.
export function bucketLabel(bucket, withDate = true) {
  const [day, hour] = bucket.split("T");
  const [, month, date] = day.split("-");
  const dayText = `${MONTHS[Number(month) - 1]} ${Number(date)}`;
  if (hour === undefined) return dayText;
  return withDate ? `${dayText} ${hour}:00` : `${hour}:00`;
}

export function timestamp(iso) {
  if (!iso) return DASH;
  return iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC");
}
