// One job in full: steps, optimizer stats, score chart, its results (best configuration, search, try),
// walk-forward folds, log, and its controls.

import { api } from "./api.js";
import { confirmAction } from "./confirm-dialog.js";
import { h, replaceChildren, setText } from "./dom.js";
import { formatClock, formatDate, formatDateTime, formatInteger, formatScore, formatValue, DASH } from "./format.js";
import { FoldTable } from "./fold-table.js";
import { candleLine, episodeLine, isActive, statusBadge, stepLine, timingLine } from "./job-status.js";
import { JobResults } from "./job-results.js";
import { LogPane } from "./log-pane.js";
import { ProgressBar } from "./progress-bar.js";
import { mergeSeries, ScoreChart } from "./score-chart.js";
import { StepIndicator } from "./step-indicator.js";

const METRICS_EVERY_MS = 2000;

function section(title, ...content) {
  return h("section", { class: "panel" }, h("h3", {}, title), ...content);
}

export class JobDetail {
  /** onRow(row): a row the server answered with; onDeleted(id); onError(error). */
  constructor(container, { onRow, onDeleted, onError }) {
    Object.assign(this, { onRow, onDeleted, onError });
    this.row = null;
    this.metricsTimer = null;
    this.metricsAt = 0;
    this.series = null;
    this.metricsThrough = null;
    this.build(container);
  }

  build(container) {
    this.title = h("h2", { id: "detail-title", tabindex: -1 });
    this.badge = h("span");
    this.meta = h("p", { class: "detail-meta" });
    this.stopButton = h("button", { type: "button", class: "warn", onclick: () => this.stop() }, "Stop");
    this.resumeButton = h("button", { type: "button", onclick: () => this.resume() }, "Resume");
    this.deleteButton = h("button", { type: "button", class: "danger", onclick: () => this.remove() }, "Delete");
    this.alert = h("p", { class: "alert", role: "alert", hidden: true });
    this.failure = h("div", { class: "failure", hidden: true });
    this.bar = new ProgressBar("Overall progress");
    this.stepLine = h("p", { class: "detail-step" });
    this.steps = new StepIndicator();
    this.stats = h("dl", { class: "stats" });
    this.params = h("dl", { class: "params-list" });
    this.chart = new ScoreChart();
    this.folds = new FoldTable();
    this.results = new JobResults();
    this.logs = new LogPane();
    this.el = h("article", { class: "job-detail", "aria-labelledby": "detail-title" },
      h("a", { class: "back", href: "#/" }, "← All jobs"),
      h("header", { class: "detail-head" },
        h("div", { class: "detail-heading" }, this.title, this.badge),
        h("div", { class: "actions" }, this.stopButton, this.resumeButton, this.deleteButton)),
      this.meta, this.alert, this.failure,
      h("div", { class: "detail-progress" }, this.bar.el, this.stepLine),
      this.steps.el,
      h("div", { class: "detail-grid" },
        section("Optimizer", this.stats, h("h4", {}, "Best parameters"), this.params),
        section("Score per episode", this.chart.el)),
      this.results.bestSection, this.results.searchSection,
      section("Walk-forward validation", this.folds.el),
      this.results.trySection,
      section("Log", this.logs.el));
    replaceChildren(container, this.el);
  }

  /** Show job `id`: its row, metrics and log. */
  async open(id) {
    this.close();
    this.id = id;
    this.row = null;
    this.showAlert("");
    setText(this.title, `Job #${id}`);
    this.logs.open(id);
    this.results.open(id);
    this.scheduleMetrics(); // the scores and their analysis come beside the row, not after it
    try {
      const row = await api(`/api/v1/training-jobs/${id}`);
      if (this.id === id) this.onRow(row);
    } catch (error) {
      if (this.id === id) this.showAlert(error.status === 404 ? `Job #${id} does not exist (any more).` : error.message);
    }
  }

  close() {
    this.id = null;
    this.row = null;
    clearTimeout(this.metricsTimer);
    this.metricsTimer = null;
    this.metricsAgain = false;
    this.metricsAt = 0; // another job's last fetch does not delay this one's first
    this.series = null;
    this.metricsThrough = null;
    this.chart.draw(null);
    this.results.close();
    this.logs.close();
  }

  /** The newest row of the shown job. */
  applyRow(row) {
    if (row.id !== this.id) return;
    const before = this.row;
    this.row = row;
    this.render(row);
    if (!before && this.series) this.chart.draw(this.series, row.objective);
    this.results.applyRow(row);
    if (!before || before.current_episode !== row.current_episode || before.status !== row.status) this.scheduleMetrics();
    if (isActive(row)) this.logs.tail();
    else {
      this.logs.stopTail();
      if (before && before.status !== row.status) this.logs.refresh();
    }
  }

  render(row) {
    setText(this.title, row.job_name);
    if (this.badge.dataset.status !== row.status) {
      const badge = statusBadge(row.status);
      this.badge.replaceWith(badge);
      this.badge = badge;
    }
    setText(this.meta, `#${row.id} · ${row.strategy} · ${row.symbol} · ${row.timeframe} · ${row.optimizer} search`
      + ` · objective ${row.objective} · created ${formatDateTime(row.created_at)}`);
    this.bar.update(row.progress, row.status);
    setText(this.stepLine, [stepLine(row), timingLine(row)].filter(Boolean).join(" · "));
    this.steps.update(row);
    this.renderStats(row);
    this.renderFailure(row);
    this.folds.update(row);
    this.stopButton.disabled = !isActive(row) || row.cancel_requested;
    setText(this.stopButton, row.cancel_requested && isActive(row) ? "Stopping…" : "Stop");
    this.resumeButton.disabled = !(row.status === "stopped" || row.status === "failed");
  }

  renderStats(row) {
    const item = (term, value) => h("div", {}, h("dt", {}, term), h("dd", {}, value || DASH));
    replaceChildren(this.stats,
      item("Episode", episodeLine(row).replace("Episode ", "")),
      item(`Best ${row.objective}`, formatScore(row.best_score)),
      item(`Current ${row.objective}`, formatScore(row.current_score)),
      row.status === "running" ? item("Backtest", candleLine(row))
        : item("Candles", row.result?.data ? `${formatInteger(row.result.data.candles)} (${formatDate(row.result.data.start)} – ${formatDate(row.result.data.end)})` : ""),
      item("Started", row.started_at ? formatDateTime(row.started_at) : ""),
      item(row.finished_at ? "Finished" : "Expected", row.finished_at ? formatDateTime(row.finished_at)
        : row.estimated_completion ? formatClock(row.estimated_completion) : ""),
      item("Worker", row.worker_name),
      item("Attempts", formatInteger(row.attempts)));
    const params = row.best_params || row.result?.best_params;
    replaceChildren(this.params, params && Object.keys(params).length
      ? Object.entries(params).map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, formatValue(v))))
      : h("p", { class: "muted" }, "None yet."));
  }

  renderFailure(row) {
    const text = row.status === "failed" ? row.error_message || "The job failed." : "";
    this.failure.hidden = !text;
    replaceChildren(this.failure, text ? [h("strong", {}, "Error: "), text] : []);
  }

  showAlert(message) {
    setText(this.alert, message);
    this.alert.hidden = !message;
  }

  scheduleMetrics() {
    if (this.metricsTimer) return;
    if (this.metricsLoading) {
      this.metricsAgain = true;
      return;
    }
    const wait = Math.max(0, this.metricsAt + METRICS_EVERY_MS - Date.now());
    this.metricsTimer = setTimeout(() => this.loadMetrics(), wait);
  }

  async loadMetrics() {
    const id = this.id;
    this.metricsTimer = null;
    this.metricsLoading = true;
    this.metricsAt = Date.now();
    try {
      this.results.refreshAnalysis(); // fetched beside the scores, not after them
      // Only what is new: everything after the iteration the last answer said was final.
      const after = this.metricsThrough;
      const page = await api(`/api/v1/training-jobs/${id}/metrics`, { query: { after_iteration: after ?? undefined } });
      if (this.id === id) {
        this.series = mergeSeries(this.series, page, after);
        this.metricsThrough = page.meta?.complete_through ?? null;
        this.chart.draw(this.series, this.row?.objective);
      }
    } catch (error) {
      if (this.id === id && error.status !== 404) this.showAlert(`Could not load the scores: ${error.message}`);
    } finally {
      this.metricsLoading = false;
      if (this.id !== null && this.metricsAgain) {
        this.metricsAgain = false;
        this.scheduleMetrics();
      }
    }
  }

  async act(title, question, action, request) {
    if (!this.row || !(await confirmAction(title, question, action))) return;
    this.showAlert("");
    try {
      const row = await request();
      if (row) this.onRow(row);
    } catch (error) {
      this.showAlert(error.message);
    }
  }

  stop() {
    const id = this.id;
    return this.act("Stop this job?", `Job #${id} stops within seconds and keeps the best result found so far.`,
      "Stop job", () => api(`/api/v1/training-jobs/${id}/stop`, { method: "POST" }));
  }

  resume() {
    const id = this.id;
    return this.act("Resume this job?", `Job #${id} is queued again; episodes already evaluated are not run again.`,
      "Resume job", () => api(`/api/v1/training-jobs/${id}/resume`, { method: "POST" }));
  }

  remove() {
    const id = this.id;
    return this.act("Delete this job?", `Job #${id} is stopped if it runs, then deleted with its scores and log. `
      + "Its saved trained configuration stays.", "Delete job", async () => {
      await api(`/api/v1/training-jobs/${id}`, { method: "DELETE" });
      this.onDeleted(id);
      return null;
    });
  }

  /** Redraw what depends on the clock or the width. */
  tick() {
    if (this.row?.status === "running") setText(this.stepLine, [stepLine(this.row), timingLine(this.row)].filter(Boolean).join(" · "));
  }

  resize() {
    this.chart.render();
    this.results.resize();
  }
}
