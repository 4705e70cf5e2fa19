// What a job row says, in words: status badge, candle line, episode line, ETA.

import { h } from "./dom.js";
import { formatDuration, formatInteger, formatPercent, formatClock } from "./format.js";

export const STATUSES = ["queued", "running", "succeeded", "failed", "stopped"];
export const TERMINAL = new Set(["succeeded", "failed", "stopped"]);

export function isActive(row) {
  return row.status === "queued" || row.status === "running";
}

/** The status badge (colour and text; text alone carries the meaning). */
export function statusBadge(status) {
  return h("span", { class: `badge badge-${status}`, dataset: { status } }, status);
}

/** "Processing candle 12,345/20,000 (61.7 %) – trades", or "" when no backtest is reported. */
export function candleLine(row) {
  if (row.status !== "running" || !row.total_candles) return "";
  const share = (100 * row.candles_processed) / row.total_candles;
  const stage = row.backtest_stage ? ` – ${row.backtest_stage}` : "";
  return `Processing candle ${formatInteger(row.candles_processed)}/${formatInteger(row.total_candles)} `
    + `(${formatPercent(share)})${stage}`;
}

/** "Episode 12/50", or "" before the optimization step has counted its episodes. */
export function episodeLine(row) {
  if (!row.total_episodes) return "";
  return `Episode ${formatInteger(row.current_episode)}/${formatInteger(row.total_episodes)}`;
}

/** "Step 2/4: Optimization (45.0 %)". */
export function stepLine(row) {
  if (row.status === "queued") return "Waiting for a worker";
  if (!row.step_number) return row.current_stage || "";
  const total = row.total_steps || 4;
  return `Step ${row.step_number}/${total}: ${row.current_stage} (${formatPercent(row.step_percentage)})`;
}

/** Seconds left: from estimated_completion (counts down between updates), else eta_seconds. */
export function secondsLeft(row, now = Date.now()) {
  if (row.estimated_completion) {
    const left = (new Date(row.estimated_completion).getTime() - now) / 1000;
    if (Number.isFinite(left)) return Math.max(0, left);
  }
  return typeof row.eta_seconds === "number" ? row.eta_seconds : null;
}

/** "ETA 3 min 20 s (14:32)" while running; when it ended otherwise. */
export function timingLine(row) {
  if (row.status === "running") {
    const left = secondsLeft(row);
    if (left === null) return "ETA: estimating…";
    const at = row.estimated_completion ? ` (${formatClock(row.estimated_completion)})` : "";
    return `ETA ${formatDuration(left)}${at}`;
  }
  if (row.status === "queued") return `Queued ${formatClock(row.created_at)}`;
  if (row.finished_at) {
    const took = row.started_at
      ? ` after ${formatDuration((new Date(row.finished_at) - new Date(row.started_at)) / 1000)}` : "";
    return `${capitalise(row.status)} ${formatClock(row.finished_at)}${took}`;
  }
  return "";
}

export function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}
