// Numbers, durations and times for people: thousands separators, the browser's locale.

const DASH = "—";
const integers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimalsCache = new Map();

function decimals(digits) {
  if (!decimalsCache.has(digits)) {
    decimalsCache.set(digits, new Intl.NumberFormat(undefined, {
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    }));
  }
  return decimalsCache.get(digits);
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

/** 12345 → "12,345" (in en-US). */
export function formatInteger(value) {
  return isNumber(value) ? integers.format(value) : DASH;
}

/** A number with a fixed count of decimals and thousands separators. */
export function formatNumber(value, digits = 2) {
  return isNumber(value) ? decimals(digits).format(value) : DASH;
}

/** A score (Sharpe, return, …): four decimals below 100, fewer above. */
export function formatScore(value) {
  if (!isNumber(value)) return DASH;
  return formatNumber(value, Math.abs(value) >= 100 ? 2 : 4);
}

/** 61.74 → "61.7 %". */
export function formatPercent(value, digits = 1) {
  return isNumber(value) ? `${formatNumber(value, digits)} %` : DASH;
}

/** Seconds → "2 h 05 min", "3 min 20 s", "45 s". */
export function formatDuration(seconds) {
  if (!isNumber(seconds) || seconds < 0) return DASH;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (hours < 48) return `${formatInteger(hours)} h ${String(minutes).padStart(2, "0")} min`;
  return `${formatInteger(Math.floor(hours / 24))} d ${hours % 24} h`;
}

function toDate(value) {
  if (!value) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Date and time in the browser's locale and time zone. */
export function formatDateTime(value) {
  const date = toDate(value);
  return date ? date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : DASH;
}

/** A date alone (fold windows). */
export function formatDate(value) {
  const date = toDate(value);
  return date ? date.toLocaleDateString(undefined, { dateStyle: "medium" }) : DASH;
}

/** A compact date (1/31/24 in en-US). */
export function formatShortDate(value) {
  const date = toDate(value);
  return date ? date.toLocaleDateString(undefined, { dateStyle: "short" }) : DASH;
}

/** A time of day; with the date when it is not today. */
export function formatClock(value) {
  const date = toDate(value);
  if (!date) return DASH;
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString(undefined, { timeStyle: "short" })
    : formatDateTime(date);
}

/** A parameter value: numbers with separators, everything else as text. */
export function formatValue(value) {
  if (isNumber(value)) return Number.isInteger(value) ? formatInteger(value) : formatNumber(value, 4).replace(/0+$/, "").replace(/[.,]$/, "");
  if (value === null || value === undefined) return DASH;
  return String(value);
}

/** {fast: 10, slow: 50} → "fast 10 · slow 50". */
export function formatParams(params) {
  if (!params || typeof params !== "object") return DASH;
  const entries = Object.entries(params);
  return entries.length ? entries.map(([k, v]) => `${k} ${formatValue(v)}`).join(" · ") : DASH;
}

export { DASH };
