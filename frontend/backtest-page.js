// One stored backtest on its own page (#/backtests/<id>): a trained configuration whose job was
// deleted, or an ad-hoc backtest.

import { api } from "./api.js";
import { BacktestPanel, PAGE_SIZE } from "./backtest-panel.js";
import { h, replaceChildren, setText } from "./dom.js";
import { formatDateTime, formatScore } from "./format.js";

export class BacktestPage {
  constructor(container) {
    this.title = h("h2", { id: "backtest-title", tabindex: -1 });
    this.meta = h("p", { class: "detail-meta" });
    this.panel = new BacktestPanel();
    replaceChildren(container, h("article", { class: "backtest-page" },
      h("a", { class: "back", href: "#/configurations" }, "← Trained configurations"),
      this.title, this.meta, h("section", { class: "panel" }, this.panel.el)));
    this.id = null;
  }

  async open(id) {
    this.id = id;
    setText(this.title, `Backtest #${id}`);
    setText(this.meta, "");
    const path = `/api/v1/backtests/${id}`;
    try {
      const view = await api(path, { query: { page_size: PAGE_SIZE } });
      if (this.id !== id) return;
      const origin = view.kind === "adhoc" ? "an ad-hoc backtest (kept a day)"
        : `the trained configuration of job #${view.training_job_id}${view.job_exists ? "" : " (the job was deleted)"}`;
      setText(this.meta, `${origin} · ${view.objective} ${formatScore(view.score)} · saved ${formatDateTime(view.created_at)}`);
      this.panel.show(view, path);
    } catch (error) {
      if (this.id === id) setText(this.meta, error.status === 404 ? `Backtest #${id} does not exist (any more).` : error.message);
    }
  }

  close() {
    this.id = null;
    this.panel.close();
  }

  resize() {
    this.panel.resize();
  }
}
