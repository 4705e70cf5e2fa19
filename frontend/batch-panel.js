// Train every symbol: the train-all form, the batch's progress (polled while it runs), cancel —
// now (its running jobs stop too) or after the current jobs (they finish, no new one starts).

import { api } from "./api.js";
import { confirmAction } from "./confirm-dialog.js";
import { h, replaceChildren, setText } from "./dom.js";
import { clearFieldErrors, field, numberValue, showApiError } from "./form-fields.js";
import { formatDateTime, formatInteger } from "./format.js";
import { ProgressBar } from "./progress-bar.js";

const P = "batch";
const POLL_MS = 2000;
const CANCEL_MODES = {
  now: { button: "Cancel batch now", title: "Cancel the batch now?",
    text: "Every queued or running job of the batch is stopped.", action: "Cancel now" },
  after_current: { button: "Cancel after current", title: "Cancel after the current jobs?",
    text: "The running jobs finish; the queued ones are stopped and no new one starts.", action: "Cancel after current" },
};

export class BatchPanel {
  constructor(container, { onError }) {
    this.container = container;
    this.onError = onError;
    this.timer = null;
    this.progress = null;
  }

  load(catalog, symbols) {
    const f = (name, label, control, hint) => field(P, name, label, control, hint);
    this.summary = h("div", { class: "form-errors", role: "alert", hidden: true });
    this.symbolBox = h("div", { class: "symbol-choices", dataset: { field: "symbols" } });
    this.submit = h("button", { type: "submit" }, "Train all");
    this.form = h("form", { class: "batch-form", novalidate: true, onsubmit: (e) => this.start(e) },
      this.summary,
      h("div", { class: "row" },
        f("template.strategy", "Strategy", { select: catalog.strategies.map((s) => [s.name, s.name]) }),
        f("template.optimizer", "Optimizer", { select: catalog.optimizers.map((o) => [o, o]), value: "random" })),
      h("div", { class: "row" },
        f("template.timeframe", "Timeframe", { select: [["", "most common"], ...catalog.timeframes.map((t) => [t, t])] }),
        f("template.n_iterations", "Episodes", { type: "number", inputmode: "numeric", value: 50 })),
      h("fieldset", { class: "symbols" }, h("legend", {}, "Symbols (none ticked: all)"), this.symbolBox),
      f("force", "Also train symbols already trained on their newest candle", { type: "checkbox" }),
      h("div", { class: "form-actions" }, this.submit));
    this.bar = new ProgressBar("Batch progress");
    this.status = h("p", { class: "batch-status", "aria-live": "polite" });
    this.counts = h("p", { class: "batch-counts" });
    this.timing = h("p", { class: "batch-timing" });
    this.cancelButtons = Object.entries(CANCEL_MODES).map(([mode, words]) =>
      h("button", { type: "button", class: "warn", dataset: { cancelMode: mode }, onclick: () => this.cancel(mode) }, words.button));
    this.cancelRow = h("div", { class: "form-actions", hidden: true }, ...this.cancelButtons);
    this.view = h("div", { class: "batch-progress" }, this.status, this.bar.el, this.counts, this.timing, this.cancelRow);
    replaceChildren(this.container, this.view, this.form);
    this.setSymbols(symbols);
    return this.refresh();
  }

  setSymbols(symbols) {
    const ticked = new Set([...this.symbolBox.querySelectorAll("input:checked")].map((i) => i.value));
    replaceChildren(this.symbolBox, h("p", { class: "field-error", hidden: true }),
      symbols.length ? symbols.map((s) => {
        const el = field(P, `symbol.${s.symbol}`, s.symbol, { type: "checkbox", value: s.symbol });
        el.querySelector("input").checked = ticked.has(s.symbol);
        return el;
      }) : h("p", { class: "muted" }, "No symbols with candles yet."));
  }

  body() {
    const value = (name) => this.form.elements.namedItem(name).value;
    const template = { strategy: value("template.strategy"), optimizer: value("template.optimizer") };
    if (value("template.timeframe")) template.timeframe = value("template.timeframe");
    const n = numberValue(this.form.elements.namedItem("template.n_iterations"));
    if (n !== null) template.n_iterations = n;
    const symbols = [...this.symbolBox.querySelectorAll("input:checked")].map((i) => i.value);
    return symbols.length ? { symbols, template } : { template };
  }

  async start(event) {
    event.preventDefault();
    clearFieldErrors(this.form, this.summary);
    this.submit.disabled = true;
    try {
      const force = this.form.elements.namedItem("force").checked;
      const started = await api("/api/v1/training/train-all", { method: "POST", query: { force }, body: this.body() });
      replaceChildren(this.summary, h("p", {}, started.message));
      this.summary.hidden = false;
      this.summary.classList.add("ok");
      await this.refresh();
    } catch (error) {
      this.summary.classList.remove("ok");
      showApiError(this.form, this.summary, error);
    } finally {
      this.submit.disabled = false;
    }
  }

  async cancel(mode) {
    const words = CANCEL_MODES[mode];
    if (!(await confirmAction(words.title, words.text, words.action))) return;
    try {
      const result = await api("/api/v1/training/cancel", { method: "POST", query: { mode } });
      setText(this.status, result.message);
    } catch (error) {
      this.onError(error);
    }
    await this.refresh();
  }

  /** Fetch the progress now; keeps polling every 2 s while a batch runs. */
  async refresh() {
    clearTimeout(this.timer);
    this.timer = null;
    try {
      this.render(await api("/api/v1/training/progress"));
    } catch (error) {
      if (error.status !== 401) setText(this.status, `Batch progress unavailable: ${error.message}`);
    }
    if (this.progress?.training_in_progress) this.timer = setTimeout(() => this.refresh(), POLL_MS);
  }

  /** A job of a batch changed: refresh soon, unless a refresh is already due. */
  nudge() {
    if (!this.timer && this.form) this.timer = setTimeout(() => this.refresh(), 500);
  }

  render(p) {
    this.progress = p;
    const running = p.training_in_progress;
    const where = p.current_symbol ? ` · now ${p.current_symbol}` : "";
    const cancelling = p.cancel_mode === "after_current" ? "Cancelling after the current jobs" : "Cancelling";
    setText(this.status, running
      ? `${p.cancelling ? cancelling : "Training"}: ${formatInteger(p.completed_symbols)}/${formatInteger(p.total_symbols)} symbols${where}`
      : p.message || (p.last_training_run ? "No batch running." : "No batch has run yet."));
    this.bar.update(p.progress_percent, running ? "running" : "idle");
    this.bar.el.hidden = !running && !p.total_symbols;
    const r = p.results;
    setText(this.counts, `Succeeded ${formatInteger(r.successful)} · Failed ${formatInteger(r.failed)} · `
      + `Skipped ${formatInteger(r.skipped)} · Stopped ${formatInteger(r.stopped)} · Remaining ${formatInteger(p.remaining_symbols)}`);
    this.counts.hidden = !running && !p.total_symbols;
    const t = p.timing;
    setText(this.timing, [t ? `Elapsed ${t.elapsed_formatted}` : "", t?.eta_formatted ? `ETA ${t.eta_formatted}` : "",
      p.last_training_run ? `Last run ${formatDateTime(p.last_training_run)}` : ""].filter(Boolean).join(" · "));
    this.cancelRow.hidden = !running;
    for (const button of this.cancelButtons) {
      // "now" stays offered while the batch waits for its current jobs: it stops them too.
      button.disabled = p.cancelling && (p.cancel_mode === "now" || button.dataset.cancelMode === "after_current");
    }
  }
}
