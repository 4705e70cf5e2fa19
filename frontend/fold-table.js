// Walk-forward validation: one row per fold, then the mean, spread and degradation.

import { h, replaceChildren } from "./dom.js";
import { formatShortDate, formatInteger, formatParams, formatPercent, formatScore, formatValue } from "./format.js";

function windowCell(start, end, candles) {
  return h("td", { class: "window" }, `${formatShortDate(start)} – ${formatShortDate(end)}`,
    h("span", { class: "sub" }, `${formatInteger(candles)} candles`));
}

function foldRow(fold) {
  const ret = typeof fold.out_of_sample_return === "number" ? formatPercent(100 * fold.out_of_sample_return, 2) : "—";
  return h("tr", {},
    h("th", { scope: "row" }, formatInteger(fold.fold)),
    h("td", { class: "num" }, formatScore(fold.in_sample_score)),
    h("td", { class: "num" }, formatScore(fold.out_of_sample_score)),
    h("td", { class: "num" }, formatInteger(fold.out_of_sample_trades)),
    h("td", { class: "num" }, ret),
    windowCell(fold.train_start, fold.train_end, fold.train_candles),
    windowCell(fold.test_start, fold.test_end, fold.test_candles),
    h("td", { class: "params" }, formatParams(fold.params)));
}

function summary(v) {
  const item = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value));
  return h("dl", { class: "fold-summary" },
    item("Mean out-of-sample", formatScore(v.mean_out_of_sample_score)),
    item("Std out-of-sample", formatScore(v.std_out_of_sample_score)),
    item("Mean in-sample", formatScore(v.mean_in_sample_score)),
    item("Degradation (in − out)", formatScore(v.degradation)),
    item("Scored folds", `${formatInteger(v.scored_folds)}/${formatInteger(v.folds.length)}`));
}

export class FoldTable {
  constructor() {
    this.el = h("div", { class: "folds" });
  }

  /** Show the `result.validation` of a job row (or why there is none). */
  update(row) {
    const v = row.result?.validation;
    const enabled = row.config?.validation?.enabled !== false;
    if (!enabled) return replaceChildren(this.el, h("p", { class: "muted" }, "Walk-forward validation is off for this job."));
    if (!v) {
      const when = row.status === "succeeded" || row.status === "failed" || row.status === "stopped"
        ? "This job ended before validation." : "The folds appear when validation has finished.";
      return replaceChildren(this.el, h("p", { class: "muted" }, when));
    }
    const settings = `Train ${formatValue(v.train_window_days)} days, gap ${formatValue(v.gap_days)} days, `
      + `test ${formatValue(v.test_window_days)} days; best ${formatInteger(v.candidates)} configurations re-ranked per fold.`;
    if (!v.folds?.length) {
      return replaceChildren(this.el, h("p", { class: "muted" }, settings), h("p", {}, `Skipped: ${v.skipped || "no folds"}.`));
    }
    return replaceChildren(this.el,
      h("p", { class: "muted" }, settings),
      h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "Fold results" },
        h("table", {},
          h("thead", {}, h("tr", {}, ["Fold", "In-sample", "Out-of-sample", "OOS trades", "OOS return",
            "Train window", "Test window", "Chosen parameters"].map((t) => h("th", { scope: "col", class: t.startsWith("In") || t.startsWith("O") ? "num" : null }, t)))),
          h("tbody", {}, v.folds.map(foldRow)))),
      summary(v));
  }
}
