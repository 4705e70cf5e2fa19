// One stored backtest in full: candles with trades, equity and drawdown, metrics, folds out of sample, trades.

import { h, replaceChildren, setText } from "./dom.js";
import { FoldEquity } from "./fold-equity.js";
import { DASH, formatDate, formatInteger, formatParams, formatPercent, formatScore } from "./format.js";
import { PriceChart } from "./price-chart.js";
import { PAGE_SIZE, TradeTable } from "./trade-table.js";

const METRICS = [
  ["total_return", "Total return", "percent"], ["sharpe", "Sharpe", "score"], ["sortino", "Sortino", "score"],
  ["max_drawdown", "Max drawdown", "percent"], ["calmar", "Calmar", "score"], ["win_rate", "Win rate", "percent"],
  ["profit_factor", "Profit factor", "score"], ["n_trades", "Trades", "integer"], ["avg_trade_return", "Avg trade", "percent"],
  ["exposure", "Exposure", "percent"], ["sqn", "SQN", "score"],
];

/** A metric for people; a missing ratio is an infinite one (no losing trade, no drawdown): metrics are never NaN. */
function metricValue(value, kind) {
  if (value === null || value === undefined) return kind === "score" ? "∞" : DASH;
  if (kind === "percent") return formatPercent(100 * value, 2);
  if (kind === "integer") return formatInteger(value);
  return formatScore(value);
}

export { PAGE_SIZE };

export class BacktestPanel {
  constructor() {
    this.summary = h("p", { class: "backtest-summary" });
    this.chart = new PriceChart();
    this.metrics = h("dl", { class: "stats backtest-metrics" });
    this.folds = new FoldEquity();
    this.trades = new TradeTable();
    this.el = h("div", { class: "backtest-panel" }, this.summary, this.chart.el,
      h("h4", {}, "Metrics"), this.metrics,
      h("div", { class: "fold-box" }, h("h4", {}, "Walk-forward, out of sample"), this.folds.el),
      h("h4", {}, "Trades"), this.trades.el);
  }

  /** Show backtest `view`; `path` is the URL its trade pages come from. */
  show(view, path) {
    const where = `${view.symbol} ${view.timeframe}, ${formatDate(view.start)} – ${formatDate(view.end)} `
      + `(${formatInteger(view.candles)} candles)`;
    setText(this.summary, `${view.strategy} on ${where} · ${formatParams(view.params)} · fee ${formatPercent(100 * view.settings.fee_rate, 3)}`
      + (view.trades_stored < view.metrics.n_trades ? ` · the first ${formatInteger(view.trades_stored)} trades are listed` : ""));
    replaceChildren(this.metrics, METRICS.map(([key, label, kind]) => h("div", { dataset: { metric: key } },
      h("dt", {}, label), h("dd", {}, metricValue(view.metrics[key], kind)))));
    this.folds.el.parentElement.hidden = !view.folds.length;
    this.folds.show(view.folds);
    this.trades.show(view, path);
    this.chart.show(view);
    this.el.dataset.backtestId = view.id;
  }

  resize() {
    this.folds.render();
  }

  close() {
    this.chart.destroy();
  }
}
