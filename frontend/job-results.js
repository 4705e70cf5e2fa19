// The job page's results: the best configuration's backtest, the search's shape, and "try these parameters".

import { api } from "./api.js";
import { BacktestPanel, PAGE_SIZE } from "./backtest-panel.js";
import { h, setText } from "./dom.js";
import { SearchView } from "./search-view.js";
import { TryForm } from "./try-form.js";

let catalog = null;

/** GET /api/v1/strategies, once per page. */
function strategies() {
  catalog ||= api("/api/v1/strategies").catch((error) => {
    catalog = null;
    throw error;
  });
  return catalog;
}

function section(title, className, ...content) {
  return h("section", { class: `panel ${className}` }, h("h3", {}, title), ...content);
}

export class JobResults {
  constructor() {
    this.bestNote = h("p", { class: "muted best-note" });
    this.best = new BacktestPanel();
    this.search = new SearchView();
    this.tryForm = new TryForm();
    this.tryNote = h("p", { class: "muted" }, "Backtest any parameters on this job's candles: a worker runs it, "
      + "and it is shown like the best configuration (kept a day).");
    this.bestSection = section("Best configuration", "best-configuration", this.bestNote, this.best.el);
    this.searchSection = section("Search", "search", this.search.el);
    this.trySection = section("Try these parameters", "try-parameters", this.tryNote, this.tryForm.el);
  }

  open(id) {
    this.close();
    this.id = id;
  }

  close() {
    this.id = null;
    this.bestFor = null;
    this.analysisLoading = false;
    this.best.close();
    this.best.el.hidden = true;
    this.tryForm.close();
    this.search.show(null);
    setText(this.bestNote, "");
  }

  /** The newest row of the shown job: load its backtest once it has saved it; keep the form's context. */
  applyRow(row) {
    if (row.id !== this.id) return;
    if (row.status === "succeeded" && row.result?.backtest_stored) {
      if (this.bestFor !== row.id) this.loadBest(row.id);
    } else if (row.status === "succeeded") {
      setText(this.bestNote, "This job saved its configuration before backtests were stored; try its parameters below.");
    } else {
      setText(this.bestNote, row.status === "queued" || row.status === "running"
        ? "The best configuration is backtested when the job saves it; its trades and equity appear here then."
        : `The job ended ${row.status} without saving a configuration; try its best parameters below.`);
    }
    this.prepareTry(row);
  }

  async loadBest(id) {
    this.bestFor = id;
    setText(this.bestNote, "Loading the backtest…");
    const path = `/api/v1/training-jobs/${id}/backtest`;
    try {
      const view = await api(path, { query: { page_size: PAGE_SIZE } });
      if (this.id !== id) return;
      setText(this.bestNote, "");
      this.best.el.hidden = false;
      this.best.show(view, path);
    } catch (error) {
      if (this.id === id) setText(this.bestNote, error.message);
    }
  }

  async prepareTry(row) {
    try {
      const { strategies: all } = await strategies();
      const strategy = all.find((s) => s.name === row.strategy);
      if (!strategy || this.id !== row.id) return;
      const config = row.config || {};
      this.tryForm.prepare({
        jobId: row.id, strategy: row.strategy, symbol: row.symbol, timeframe: row.timeframe,
        params: row.best_params || row.result?.best_params || strategy.defaults,
        start: row.result?.data?.start || config.start, end: row.result?.data?.end || config.end,
        settings: { fee_rate: config.fee_rate, slippage: config.slippage, position_size_pct: config.position_size_pct },
      }, strategy);
    } catch {
      // the strategies are asked for again with the next row
    }
  }

  /** Fetch the analysis again (the job detail calls this when it has new evaluations). */
  async refreshAnalysis() {
    const id = this.id;
    if (id === null || this.analysisLoading) return;
    this.analysisLoading = true;
    try {
      const analysis = await api(`/api/v1/training-jobs/${id}/analysis`);
      if (this.id === id) this.search.show(analysis);
    } catch {
      // shown again at the next refresh; a deleted job leaves the page
    } finally {
      this.analysisLoading = false;
    }
  }

  resize() {
    this.best.resize();
    this.search.render();
    this.tryForm.resize();
  }
}
