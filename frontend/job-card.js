// TrainingJobCard: one job in the list, updated in place as its row changes.

import { h, setText } from "./dom.js";
import { formatScore, formatParams } from "./format.js";
import { ProgressBar } from "./progress-bar.js";
import { candleLine, episodeLine, statusBadge, stepLine, timingLine } from "./job-status.js";

export class JobCard {
  constructor(row) {
    this.id = row.id;
    this.link = h("a", { class: "card-link", href: `#/jobs/${row.id}` });
    this.badge = h("span");
    this.meta = h("p", { class: "card-meta" });
    this.bar = new ProgressBar(`Progress of job ${row.id}`);
    this.episode = h("span", { class: "card-episode" });
    this.step = h("span", { class: "card-step" });
    this.candles = h("p", { class: "card-candles" });
    this.timing = h("span", { class: "card-timing" });
    this.best = h("span", { class: "card-best" });
    this.error = h("p", { class: "card-error" });
    this.el = h("article", { class: "job-card", dataset: { jobId: row.id } },
      h("header", { class: "card-head" }, h("h3", { class: "card-title" }, this.link), this.badge),
      this.meta, this.bar.el,
      h("p", { class: "card-line" }, this.episode, this.step),
      this.candles,
      h("p", { class: "card-line" }, this.timing, this.best),
      this.error);
    this.update(row);
  }

  update(row) {
    this.row = row;
    this.el.dataset.status = row.status;
    setText(this.link, row.job_name);
    this.link.title = row.job_name; // the title is cut to one line
    if (this.badge.dataset.status !== row.status) {
      const badge = statusBadge(row.status);
      this.badge.replaceWith(badge);
      this.badge = badge;
    }
    setText(this.meta, `#${row.id} · ${row.strategy} · ${row.symbol} · ${row.timeframe} · ${row.optimizer} search`);
    this.bar.update(row.progress, row.status);
    setText(this.episode, episodeLine(row));
    setText(this.step, stepLine(row));
    setText(this.candles, candleLine(row));
    this.candles.hidden = !this.candles.textContent;
    this.tick();
    const best = row.best_score === null || row.best_score === undefined ? ""
      : `Best ${row.objective} ${formatScore(row.best_score)}`;
    setText(this.best, best);
    this.best.title = row.best_params ? formatParams(row.best_params) : "";
    setText(this.error, row.status === "failed" ? row.error_message || "failed" : "");
    this.error.hidden = !this.error.textContent;
  }

  /** Refresh what depends on the clock (the ETA counts down between row updates). */
  tick() {
    setText(this.timing, timingLine(this.row));
  }
}
