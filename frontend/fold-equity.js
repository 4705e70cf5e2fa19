// Walk-forward out of sample: each fold's test window backtested with the parameters that fold chose,
// the segments chained (each starts where the one before ended), drawn as SVG on a time axis.

import { h, replaceChildren, svg } from "./dom.js";
import { formatDate, formatNumber, formatPercent, formatScore } from "./format.js";

const HEIGHT = 200;
const MARGIN = { left: 64, right: 14, top: 14, bottom: 28 };

/** The segments scaled so each starts at the end of the one before: [{fold, points: [[t, equity]…]}]. */
export function chainSegments(folds, initial = 10_000) {
  let level = initial;
  return folds.filter((f) => f.equity.time.length).map((fold) => {
    const start = fold.equity.equity[0];
    const scale = start ? level / start : 1;
    const points = fold.equity.time.map((t, i) => [t, fold.equity.equity[i] * scale]);
    level = points[points.length - 1][1];
    return { fold, points };
  });
}

export class FoldEquity {
  constructor() {
    this.plot = h("div", { class: "chart-plot fold-plot" });
    this.caption = h("figcaption", { class: "chart-legend" });
    this.el = h("figure", { class: "chart fold-equity" }, this.plot, this.caption);
    this.folds = [];
  }

  show(folds) {
    this.folds = folds || [];
    this.render();
  }

  render() {
    const segments = chainSegments(this.folds);
    this.el.hidden = !this.folds.length;
    if (!segments.length) return replaceChildren(this.plot);
    const width = Math.max(280, Math.round(this.plot.clientWidth || 640));
    const all = segments.flatMap((s) => s.points);
    const [t0, t1] = [all[0][0], all[all.length - 1][0]];
    let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
    if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 1, y1 + 1];
    const x = (t) => MARGIN.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - MARGIN.left - MARGIN.right);
    const y = (v) => HEIGHT - MARGIN.bottom - ((v - y0) / (y1 - y0)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
    const path = (points) => points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)} ${y(v).toFixed(1)}`).join("");
    const end = segments[segments.length - 1].points.at(-1)[1];
    const label = `Out-of-sample equity over ${segments.length} folds, chained: ${formatPercent(100 * (end / 10_000 - 1), 2)}`;
    replaceChildren(this.plot, svg("svg", { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: "img", "aria-label": label },
      svg("g", { class: "axes" },
        [y0, (y0 + y1) / 2, y1].map((v) => svg("g", {},
          svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }),
          svg("text", { class: "tick", x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end" }, formatNumber(v, 0)))),
        [t0, t1].map((t, i) => svg("text", { class: "tick", x: x(t), y: HEIGHT - 8, "text-anchor": i ? "end" : "start" },
          formatDate(t * 1000)))),
      segments.map(({ fold, points }, i) => svg("path", { class: `fold-segment fold-${i % 2 ? "odd" : "even"}`, d: path(points) },
        svg("title", {}, `Fold ${fold.fold}: ${formatDate(fold.test_start)} – ${formatDate(fold.test_end)}, `
          + `out-of-sample ${formatScore(fold.out_of_sample_score)}, return ${formatPercent(100 * (fold.metrics.total_return ?? 0), 2)}, `
          + `${fold.metrics.n_trades ?? 0} trades`)))));
    replaceChildren(this.caption, label);
  }
}
