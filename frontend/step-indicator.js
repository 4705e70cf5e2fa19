// The steps of a job: Data Collection → Optimization → Validation → Save Configuration.

import { h, replaceChildren } from "./dom.js";
import { formatInteger, formatPercent } from "./format.js";

const ALL_STEPS = ["Data Collection", "Optimization", "Validation", "Save Configuration"];
const VALIDATION = "Validation";

function validationOff(row) {
  return row.total_steps === 3 || row.config?.validation?.enabled === false || Boolean(row.step_details?.validation_off);
}

/** The step names of a job, as its row numbers them: three when its validation is off. */
export function stepNames(row) {
  return validationOff(row) ? ALL_STEPS.filter((name) => name !== VALIDATION) : ALL_STEPS;
}

/**
 * Why validation did not run, or null: the server's reason for skipping it (the windows did
 * not fit the candles, no candidate) — from the result once the job ended, from the step
 * details while it runs (the Validation step's own, then Save Configuration's).
 */
export function validationSkipped(row) {
  const details = row.step_details || {};
  return row.result?.validation?.skipped
    || (row.current_stage === VALIDATION ? details.skipped : details.validation_skipped)
    || null;
}

/** done | current | failed | stopped | pending, for the step numbered `number` (1-based). */
function stepState(row, number) {
  if (row.status === "succeeded") return "done";
  if (number < row.step_number) return "done";
  if (number > row.step_number) return "pending";
  if (row.status === "failed" || row.status === "stopped") return row.status;
  return "current";
}

/** Every step with its state: a Validation that is off or was skipped says so, never "done". */
function stepStates(row) {
  const numbered = stepNames(row);
  return ALL_STEPS.map((name) => {
    const number = numbered.indexOf(name) + 1;
    if (!number) return { name, number: null, state: "off" };
    const state = stepState(row, number);
    const skipped = name === VALIDATION && state !== "pending" && validationSkipped(row);
    return skipped ? { name, number, state: "skipped", reason: skipped } : { name, number, state };
  });
}

/** A few words on what the current step is doing, from its step_details. */
function stepNote(row, name) {
  const d = row.step_details || {};
  if (name === "Data Collection" && d.candles_total) {
    return `${formatInteger(d.candles_loaded)}/${formatInteger(d.candles_total)} candles`;
  }
  if (name === "Optimization" && d.in_flight) return `${formatInteger(d.in_flight)} in flight`;
  if (name === "Validation" && d.folds) {
    return d.fold ? `fold ${formatInteger(d.fold)}/${formatInteger(d.folds)}${d.window ? ` (${d.window})` : ""}`
      : `${formatInteger(d.folds)} folds`;
  }
  return "";
}

function stateText(state, row) {
  switch (state) {
    case "done": return "done";
    case "current": return formatPercent(row.step_percentage);
    case "failed": return `failed at ${formatPercent(row.step_percentage)}`;
    case "stopped": return `stopped at ${formatPercent(row.step_percentage)}`;
    case "skipped": return "skipped";
    case "off": return "off for this job";
    default: return "pending";
  }
}

export class StepIndicator {
  constructor() {
    this.el = h("ol", { class: "steps", "aria-label": "Training steps" });
  }

  update(row) {
    const items = stepStates(row).map(({ name, number, state, reason }) => {
      const note = state === "current" ? stepNote(row, name) : state === "skipped" ? reason : "";
      const mark = state === "done" ? "✓" : number === null || state === "skipped" ? "–" : String(number);
      return h("li", { class: `step step-${state}`, dataset: { state }, "aria-current": state === "current" ? "step" : null },
        h("span", { class: "step-mark", "aria-hidden": "true" }, mark),
        h("span", { class: "step-body" },
          h("span", { class: "step-name" }, name),
          h("span", { class: "step-state" }, stateText(state, row)),
          note ? h("span", { class: "step-note" }, note) : null),
        state === "current" ? h("span", { class: "step-bar", "aria-hidden": "true" },
          h("span", { style: `width:${Math.min(100, row.step_percentage || 0)}%` })) : null);
    });
    replaceChildren(this.el, items);
  }
}
