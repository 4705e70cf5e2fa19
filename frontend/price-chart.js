// A backtest's candles with its trades, its equity and its drawdown: three panes on one time axis,
// drawn by TradingView's lightweight-charts. Candles come by range (GET /backtests/{id}/candles): a
// view loads about TARGET_BARS bars over three visible widths, and zooming in or panning past them
// loads again, finer — a million candles are never sent at once.

import { api } from "./api.js";
import { h, setText } from "./dom.js";
import { formatInteger } from "./format.js";
import {
  AreaSeries, CandlestickSeries, ColorType, LineSeries, createChart, createSeriesMarkers,
} from "./vendor/lightweight-charts/lightweight-charts.standalone.production.mjs";

const TARGET_BARS = 1000;
const LOAD_WIDTHS = 3;
const MAX_BARS = 3000;
const SETTLE_MS = 250;
export const COLORS = { up: "#26a69a", down: "#ef5350", equity: "#58a6ff", drawdown: "#ff7b72", win: "#3fb950", loss: "#f85149", entry: "#e3b341" };

/** Index of the last of the sorted `times` at or before `t` (−1 if none). */
export function lastAtOrBefore(times, t) {
  let low = 0;
  let high = times.length - 1;
  let found = -1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (times[mid] <= t) {
      found = mid;
      low = mid + 1;
    } else high = mid - 1;
  }
  return found;
}

/**
 * The stored equity curve (≤ 2,000 points) on the bars' times: per bar the equity at its end
 * (linear between points) and the deepest drawdown of any point inside it or at its end, so the
 * deepest drawdown shows at every zoom.
 */
export function curveOnBars(curve, barTimes, secondsPerBar) {
  const { time, equity, drawdown } = curve;
  const at = (values, t) => {
    const i = lastAtOrBefore(time, t);
    if (i < 0) return values[0];
    if (i >= time.length - 1) return values[time.length - 1];
    const share = (t - time[i]) / (time[i + 1] - time[i]);
    return values[i] + share * (values[i + 1] - values[i]);
  };
  const out = { equity: [], drawdown: [] };
  let p = 0;
  barTimes.forEach((t, i) => {
    const end = Math.min(i + 1 < barTimes.length ? barTimes[i + 1] : t + secondsPerBar, time[time.length - 1]);
    let deepest = at(drawdown, end);
    while (p < time.length && time[p] < t) p += 1;
    for (let q = p; q < time.length && time[q] <= end; q += 1) deepest = Math.max(deepest, drawdown[q]);
    out.equity.push({ time: t, value: at(equity, end) });
    out.drawdown.push({ time: t, value: -100 * deepest });
  });
  return out;
}

/** An entry marker for each trade entered in the bars' span and an exit marker for each that left it. */
export function tradeMarkers(trades, barTimes, secondsPerBar) {
  const last = barTimes[barTimes.length - 1] + secondsPerBar;
  const markers = [];
  const place = (t) => (t >= barTimes[0] && t < last ? barTimes[lastAtOrBefore(barTimes, t)] : null);
  for (const trade of trades) {
    const entry = place(trade.entry_time);
    const exit = place(trade.exit_time);
    if (entry !== null) markers.push({ time: entry, position: "belowBar", shape: "arrowUp", color: COLORS.entry, id: `e${trade.number}` });
    if (exit !== null) {
      markers.push({ time: exit, position: "aboveBar", shape: "arrowDown", color: trade.pnl >= 0 ? COLORS.win : COLORS.loss, id: `x${trade.number}` });
    }
  }
  return markers.sort((a, b) => a.time - b.time);
}

export class PriceChart {
  constructor() {
    this.holder = h("div", { class: "price-chart-canvas" });
    this.note = h("p", { class: "hint price-chart-note", "aria-live": "polite" });
    this.el = h("div", { class: "price-chart", role: "img", "aria-label": "Candles with trades, equity and drawdown" },
      h("p", { class: "chart-legend" }, h("span", { class: "legend-candles" }, "candles"),
        h("span", { class: "legend-entry" }, "entry"), h("span", { class: "legend-exit" }, "exit (green: profit)"),
        h("span", { class: "legend-equity" }, "equity"), h("span", { class: "legend-drawdown" }, "drawdown %")),
      this.holder, this.note);
    this.chart = null;
    this.settleTimer = null;
    this.loading = null;
  }

  /** Draw backtest `view` (GET /backtests/{id}): its equity now, its candles as they load. */
  show(view) {
    this.destroy();
    this.id = view.id;
    this.curve = view.equity;
    this.first = Math.floor(new Date(view.start).getTime() / 1000);
    this.last = Math.floor(new Date(view.end).getTime() / 1000);
    this.el.dataset.state = "loading";
    this.build();
    this.load(this.first, this.last, null);
  }

  build() {
    this.chart = createChart(this.holder, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: "#121926" }, textColor: "#a3b0c2", attributionLogo: true,
        panes: { separatorColor: "#26334a" } },
      grid: { vertLines: { color: "#1b2536" }, horzLines: { color: "#1b2536" } },
      rightPriceScale: { borderColor: "#26334a" },
      timeScale: { borderColor: "#26334a", timeVisible: true, secondsVisible: false },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: COLORS.up, downColor: COLORS.down, borderVisible: false, wickUpColor: COLORS.up, wickDownColor: COLORS.down,
    }, 0);
    this.equity = this.chart.addSeries(LineSeries, { color: COLORS.equity, lineWidth: 2, priceLineVisible: false }, 1);
    this.drawdown = this.chart.addSeries(AreaSeries, {
      lineColor: COLORS.drawdown, topColor: "rgba(255, 123, 114, 0.05)", bottomColor: "rgba(255, 123, 114, 0.45)",
      lineWidth: 1, priceLineVisible: false, priceFormat: { type: "custom", formatter: (v) => `${v.toFixed(1)} %` },
    }, 2);
    this.markers = createSeriesMarkers(this.candles, []);
    const panes = this.chart.panes();
    panes[0].setStretchFactor(3);
    panes[1].setStretchFactor(1.4);
    panes[2].setStretchFactor(1);
    this.chart.timeScale().subscribeVisibleTimeRangeChange(() => this.settleSoon());
  }

  settleSoon() {
    clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.followView(), SETTLE_MS);
  }

  /** Load again when the view left the loaded span or is zoomed in enough for finer bars. */
  followView() {
    const view = this.chart?.timeScale().getVisibleRange();
    const loaded = this.window;
    if (!view || !loaded || this.loading) return;
    const from = Number(view.from);
    const to = Number(view.to);
    const wanted = Math.max(1, Math.ceil((to - from) / this.candleSeconds / TARGET_BARS));
    const outside = (from < loaded.from && loaded.from > this.first) || (to > loaded.to && loaded.to < this.last);
    if (outside || loaded.perBar > 1.5 * wanted) {
      const width = to - from;
      this.load(Math.max(this.first, from - width), Math.min(this.last, to + width), { from, to });
    }
  }

  async load(from, to, keep) {
    const id = this.id;
    const query = { start: new Date(from * 1000).toISOString(), end: new Date(to * 1000).toISOString(),
      max_bars: Math.min(MAX_BARS, TARGET_BARS * LOAD_WIDTHS) };
    this.loading = api(`/api/v1/backtests/${id}/candles`, { query });
    try {
      const bars = await this.loading;
      if (this.id === id && this.chart) this.draw(bars, keep);
    } catch (error) {
      if (this.id === id) setText(this.note, `Could not load the candles: ${error.message}`);
    } finally {
      this.loading = null;
    }
  }

  draw(bars, keep) {
    this.candleSeconds = bars.seconds_per_bar / bars.per_bar;
    const times = bars.time;
    this.candles.setData(times.map((t, i) => ({ time: t, open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i] })));
    const curve = curveOnBars(this.curve, times, bars.seconds_per_bar);
    this.equity.setData(curve.equity);
    this.drawdown.setData(curve.drawdown);
    const markers = bars.trades_complete ? tradeMarkers(bars.trades, times, bars.seconds_per_bar) : [];
    this.markers.setMarkers(markers);
    this.window = { from: times[0] ?? this.first, to: (times[times.length - 1] ?? this.last) + bars.seconds_per_bar, perBar: bars.per_bar };
    Object.assign(this.el.dataset, { state: "ready", bars: times.length, perBar: bars.per_bar, markers: markers.length,
      trades: bars.trades.length, from: this.window.from, to: this.window.to });
    const each = bars.per_bar === 1 ? "one candle a bar" : `${formatInteger(bars.per_bar)} candles a bar`;
    setText(this.note, `${formatInteger(times.length)} bars, ${each}; scroll or pinch to zoom, drag to pan.`
      + (bars.trades_complete ? "" : ` More than ${formatInteger(bars.trades.length)} trades in this range: zoom in to see their markers.`));
    if (keep) this.chart.timeScale().setVisibleRange({ from: keep.from, to: keep.to });
    else this.chart.timeScale().fitContent();
  }

  destroy() {
    clearTimeout(this.settleTimer);
    this.chart?.remove();
    this.chart = null;
    this.window = null;
    this.id = null;
  }
}
