// Score per episode with the best-so-far line, drawn as SVG.

import { h, svg, replaceChildren } from "./dom.js";
import { formatInteger, formatNumber, formatParams, formatScore } from "./format.js";

const HEIGHT = 240;
const MARGIN = { left: 64, right: 14, top: 26, bottom: 34 };
const MAX_DOTS_WITH_TITLES = 1500;

/** A round step (1, 2, 2.5 or 5 × 10^k) giving about `count` intervals over `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const multiple = [1, 2, 2.5, 5, 10].find((m) => m * power >= raw);
  return multiple * power;
}

function ticks(low, high, count) {
  const step = niceStep(high - low, count);
  const values = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) values.push(v);
  return { values, step };
}

function domain(values, minSpan) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < minSpan) {
    const pad = Math.max(minSpan, Math.abs(high) * 0.1) / 2;
    low -= pad;
    high += pad;
  }
  return [low, high];
}

const SERIES_KEYS = ["iterations", "score", "best_score", "params", "valid", "duration_ms"];

/**
 * The series with everything after iteration `after` replaced by `page` (an answer of
 * `/metrics?after_iteration=after`, which holds every evaluation after it); `after` null: `page` is all.
 */
export function mergeSeries(series, page, after) {
  if (!series || after === null || after === undefined) return page;
  const kept = series.iterations.findIndex((iteration) => iteration > after);
  const cut = kept === -1 ? series.iterations.length : kept;
  const merged = { ...page };
  for (const key of SERIES_KEYS) merged[key] = (series[key] || []).slice(0, cut).concat(page[key] || []);
  return merged;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

export class ScoreChart {
  constructor() {
    this.plot = h("div", { class: "chart-plot" });
    this.caption = h("figcaption", { class: "chart-legend" },
      h("span", { class: "legend-score" }, "score of an episode"),
      h("span", { class: "legend-invalid" }, "invalid (too few trades)"),
      h("span", { class: "legend-best" }, "best so far"));
    this.el = h("figure", { class: "chart" }, this.plot, this.caption);
    this.series = null;
    this.objective = "score";
  }

  draw(series, objective) {
    this.series = series;
    this.objective = objective || "score";
    this.render();
  }

  /** Draw (again) at the container's current width. */
  render() {
    const s = this.series;
    const points = [];
    if (s) {
      s.iterations.forEach((iteration, i) => {
        if (finite(s.score[i])) points.push({ i, iteration, score: s.score[i], valid: s.valid?.[i] !== false });
      });
    }
    this.caption.hidden = !points.length;
    if (!points.length) {
      replaceChildren(this.plot, h("p", { class: "chart-empty" }, "No scored episodes yet."));
      return;
    }
    const width = Math.max(280, Math.round(this.plot.clientWidth || 640));
    const best = s.iterations.map((iteration, i) => ({ iteration, best: s.best_score[i] })).filter((p) => finite(p.best));
    const [x0, x1] = domain(s.iterations, 2);
    const [y0, y1] = domain([...points.map((p) => p.score), ...best.map((p) => p.best)], 1e-6);
    const x = (v) => MARGIN.left + ((v - x0) / (x1 - x0)) * (width - MARGIN.left - MARGIN.right);
    const y = (v) => HEIGHT - MARGIN.bottom - ((v - y0) / (y1 - y0)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
    const top = best.length ? best[best.length - 1] : null;
    const label = `${formatInteger(points.length)} scored episodes; best ${this.objective} `
      + `${top ? formatScore(top.best) : "none"}`;
    const chart = svg("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img", "aria-label": label },
      this.axes(x, y, [x0, x1], [y0, y1], width),
      this.dots(points, x, y, s),
      best.length ? svg("path", { class: "best-line", d: this.stepPath(best, x, y) }) : null);
    replaceChildren(this.plot, chart);
  }

  axes(x, y, [x0, x1], [y0, y1], width) {
    const yTicks = ticks(y0, y1, 4);
    const digits = Math.max(0, Math.min(4, -Math.floor(Math.log10(yTicks.step))));
    const xTicks = ticks(x0, x1, Math.max(2, Math.floor(width / 110)));
    const xValues = xTicks.values.filter((v) => Number.isInteger(v) || xTicks.step >= 1);
    return svg("g", { class: "axes" },
      yTicks.values.map((v) => svg("g", {},
        svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }),
        svg("text", { class: "tick", x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end" }, formatNumber(v, digits)))),
      xValues.map((v) => svg("text", { class: "tick", x: x(v), y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle" },
        formatInteger(v))),
      svg("line", { class: "axis", x1: MARGIN.left, x2: width - MARGIN.right, y1: HEIGHT - MARGIN.bottom, y2: HEIGHT - MARGIN.bottom }),
      svg("text", { class: "axis-title", x: width - MARGIN.right, y: HEIGHT - 4, "text-anchor": "end" }, "episode"),
      svg("text", { class: "axis-title", x: 4, y: 12, "text-anchor": "start" }, this.objective));
  }

  dots(points, x, y, s) {
    if (points.length > MAX_DOTS_WITH_TITLES) {
      const path = (valid) => points.filter((p) => p.valid === valid)
        .map((p) => `M${x(p.iteration).toFixed(1)} ${y(p.score).toFixed(1)}h0`).join("");
      return svg("g", {},
        svg("path", { class: "dots-invalid", d: path(false) }),
        svg("path", { class: "dots", d: path(true) }));
    }
    return svg("g", {}, points.map((p) => svg("circle", {
      class: p.valid ? "dot" : "dot dot-invalid", cx: x(p.iteration).toFixed(1), cy: y(p.score).toFixed(1), r: 3,
    }, svg("title", {}, `episode ${formatInteger(p.iteration)}: ${formatScore(p.score)}`
      + (p.valid ? "" : " (invalid)") + `\n${formatParams(s.params?.[p.i])}`))));
  }

  /** The running best as a staircase: it holds until a better score arrives. */
  stepPath(best, x, y) {
    let d = `M${x(best[0].iteration).toFixed(1)} ${y(best[0].best).toFixed(1)}`;
    for (const p of best.slice(1)) d += `H${x(p.iteration).toFixed(1)}V${y(p.best).toFixed(1)}`;
    return d;
  }
}
