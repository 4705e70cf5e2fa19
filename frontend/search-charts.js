// The shape of a search as SVG: importance bars, the top-2 score grid, slices, parallel coordinates.
// Each function takes a part of GET /training-jobs/{id}/analysis and returns one <svg>.

import { svg } from "./dom.js";
import { formatNumber, formatPercent, formatScore, formatValue } from "./format.js";

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

/** A colour for `share` in [0, 1], dark violet (worst) to yellow (best). */
export function scoreColor(share) {
  const s = Math.min(1, Math.max(0, Number.isFinite(share) ? share : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(s));
  const mix = VIRIDIS[i].map((c, k) => Math.round(c + (s - i) * (VIRIDIS[i + 1][k] - c)));
  return `rgb(${mix.join(",")})`;
}

function extent(values) {
  const finite = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let [low, high] = [Math.min(...finite), Math.max(...finite)];
  if (high - low < 1e-12) [low, high] = [low - 0.5, high + 0.5];
  return [low, high];
}

function frame(width, height, label, ...children) {
  return svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label }, ...children);
}

export function importanceBars(analysis, width) {
  const rows = [...analysis.importance, { name: "interactions and noise", share: analysis.unexplained, rest: true }];
  const left = 150;
  const height = rows.length * 24 + 8;
  const x = (share) => left + share * (width - left - 60);
  return frame(width, height, `Parameter importance: ${analysis.importance.map((i) => `${i.name} ${formatPercent(100 * i.share, 0)}`).join(", ")}`,
    rows.map((row, i) => svg("g", { transform: `translate(0 ${i * 24 + 4})` },
      svg("text", { class: "tick", x: left - 8, y: 14, "text-anchor": "end" }, row.name),
      svg("rect", { class: row.rest ? "importance-rest" : "importance-bar", x: left, y: 3, height: 14, width: Math.max(1, x(row.share) - left) },
        svg("title", {}, `${row.name}: ${formatPercent(100 * row.share, 1)} of the score's variance`)),
      svg("text", { class: "tick", x: x(row.share) + 6, y: 14 }, formatPercent(100 * row.share, 1)))));
}

export function heatmap(grid, objective, width) {
  const left = 70;
  const bottom = 40;
  const columns = grid.x_values.length;
  const rows = grid.y_values.length;
  const cell = Math.max(8, Math.min(48, Math.floor((width - left - 10) / columns)));
  const top = 20;
  const rowHeight = Math.min(cell, 28);
  const height = top + rows * rowHeight + bottom;
  const [low, high] = extent(grid.best.flat());
  const label = (v) => (typeof v === "number" ? formatValue(Number(v.toPrecision(4))) : String(v));
  const every = Math.max(1, Math.ceil(columns / Math.max(1, Math.floor((width - left) / 44))));
  return frame(width, height, `Best ${objective} by ${grid.x} and ${grid.y}`,
    grid.best.flatMap((values, r) => values.map((value, c) => svg("rect", {
      class: value === null ? "heatmap-cell heatmap-empty" : "heatmap-cell",
      x: left + c * cell, y: top + (rows - 1 - r) * rowHeight, width: cell - 1, height: rowHeight - 1,
      fill: value === null ? "none" : scoreColor((value - low) / (high - low)),
    }, svg("title", {}, `${grid.x} ${label(grid.x_values[c])}, ${grid.y} ${label(grid.y_values[r])}: `
      + (value === null ? "not evaluated" : `best ${formatScore(value)}, mean ${formatScore(grid.mean[r][c])}, ${grid.count[r][c]} evaluated`))))),
    grid.y_values.map((v, r) => svg("text", { class: "tick", x: left - 6, y: top + (rows - 1 - r) * rowHeight + rowHeight / 2 + 4,
      "text-anchor": "end" }, label(v))),
    grid.x_values.map((v, c) => (c % every ? null : svg("text", { class: "tick", x: left + c * cell + cell / 2,
      y: top + rows * rowHeight + 14, "text-anchor": "middle" }, label(v)))),
    svg("text", { class: "axis-title", x: left + (columns * cell) / 2, y: height - 4, "text-anchor": "middle" }, grid.x),
    svg("text", { class: "axis-title", x: 4, y: 12 }, grid.y));
}

/** One parameter's scores: a dot per sampled evaluation and the best of each bin as a line. */
export function slice(part, points, objective, width) {
  const height = 150;
  const m = { left: 48, right: 8, top: 20, bottom: 22 };
  const categorical = part.kind === "categorical";
  const labels = part.bins.map((b) => String(b.value));
  const raw = points.params[part.name] || [];
  const xs = categorical ? raw.map((v) => labels.indexOf(String(v))) : raw.map(Number);
  const binX = categorical ? part.bins.map((_, i) => i) : part.bins.map((b) => Number(b.value));
  const [x0, x1] = categorical ? [-0.5, labels.length - 0.5] : extent([...xs, ...binX]);
  const [y0, y1] = extent(points.score.concat(part.bins.map((b) => b.best)));
  const x = (v) => m.left + ((v - x0) / (x1 - x0)) * (width - m.left - m.right);
  const y = (v) => height - m.bottom - ((v - y0) / (y1 - y0)) * (height - m.top - m.bottom);
  const best = part.bins.map((b, i) => [binX[i], b.best]).filter(([, v]) => v !== null);
  const tickValues = categorical ? labels : [x0, (x0 + x1) / 2, x1];
  return frame(width, height, `${objective} against ${part.name}`,
    svg("line", { class: "axis", x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom }),
    [y0, y1].map((v) => svg("text", { class: "tick", x: m.left - 4, y: y(v) + 4, "text-anchor": "end" }, formatNumber(v, 2))),
    tickValues.map((v, i) => svg("text", { class: "tick", x: categorical ? x(i) : x(v), y: height - m.bottom + 14,
      "text-anchor": "middle" }, categorical ? v : formatValue(Number(Number(v).toPrecision(3))))),
    svg("text", { class: "axis-title slice-name", x: m.left, y: 12 }, part.name),
    svg("path", { class: "slice-dots", d: xs.map((v, i) => (v < x0 || !Number.isFinite(v) ? "" : `M${x(v).toFixed(1)} ${y(points.score[i]).toFixed(1)}h0`)).join("") }),
    best.length > 1 ? svg("path", { class: "slice-best", d: best.map(([v, s], i) => `${i ? "L" : "M"}${x(v).toFixed(1)} ${y(s).toFixed(1)}`).join("") }) : null,
    best.map(([v, s]) => svg("circle", { class: "slice-bin", cx: x(v).toFixed(1), cy: y(s).toFixed(1), r: 2.5 })));
}

/** Every sampled evaluation as a line across one axis per parameter and one for the score. */
export function parallelCoordinates(points, names, objective, width) {
  const height = 240;
  const m = { left: 30, right: 30, top: 22, bottom: 16 };
  const axes = [...names, objective];
  const columns = [...names.map((name) => points.params[name] || []), points.score];
  const scales = columns.map((values) => {
    const numeric = values.every((v) => typeof v === "number");
    if (numeric) {
      const [low, high] = extent(values);
      return (v) => (v - low) / (high - low);
    }
    const labels = [...new Set(values.map(String))].sort();
    return (v) => (labels.length > 1 ? labels.indexOf(String(v)) / (labels.length - 1) : 0.5);
  });
  const x = (i) => m.left + (i / Math.max(1, axes.length - 1)) * (width - m.left - m.right);
  const y = (share) => height - m.bottom - share * (height - m.top - m.bottom);
  const [low, high] = extent(points.score);
  const order = points.score.map((s, i) => [s, i]).sort((a, b) => a[0] - b[0]);
  return frame(width, height, `Parallel coordinates of ${points.score.length} evaluations`,
    order.map(([score, row]) => svg("path", {
      class: "pc-line", stroke: scoreColor((score - low) / (high - low)),
      d: columns.map((values, i) => `${i ? "L" : "M"}${x(i).toFixed(1)} ${y(scales[i](values[row])).toFixed(1)}`).join(""),
    })),
    axes.map((name, i) => svg("g", {},
      svg("line", { class: "pc-axis", x1: x(i), x2: x(i), y1: m.top, y2: height - m.bottom }),
      svg("text", { class: "axis-title", x: x(i), y: 12, "text-anchor": i === 0 ? "start" : i === axes.length - 1 ? "end" : "middle" }, name))));
}
