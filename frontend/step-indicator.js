// The steps of a job: Data Collection → Optimization → Validation → Save Configuration.

import { h, replaceChildren } from "./dom.js";
import { formatInteger, formatPercent } from "./format.js";

const ALL_STEPS = ["Data Collection", "Optimization", "Validation", "Save Configuration"];

/** The step names of a job: three when its validation is off. */
export function stepNames(row) {
  const validationOff = row.total_steps === 3 || row.config?.validation?.enabled === false;
  return validationOff ? ALL_STEPS.filter((name) => name !== "Validation") : ALL_STEPS;
}

/** done | current | failed | stopped | pending, for the step numbered `number` (1-based). */
function stepState(row, number) {
  if (row.status === "succeeded") return "done";
  if (number < row.step_number) return "done";
  if (number > row.step_number) return "pending";
  if (row.status === "failed" || row.status === "stopped") return row.status;
  return "current";
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
    default: return "pending";
  }
}

export class StepIndicator {
  constructor() {
    this.el = h("ol", { class: "steps", "aria-label": "Training steps" });
  }

  update(row) {
    const items = stepNames(row).map((name, index) => {
      const number = index + 1;
      const state = stepState(row, number);
      const note = state === "current" ? stepNote(row, name) : "";
      return h("li", { class: `step step-${state}`, dataset: { state }, "aria-current": state === "current" ? "step" : null },
        h("span", { class: "step-mark", "aria-hidden": "true" }, state === "done" ? "✓" : String(number)),
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
