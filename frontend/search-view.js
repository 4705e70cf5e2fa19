// Job detail, "Search": which parameters matter and where the good region lies, from the job's
// evaluations (GET /training-jobs/{id}/analysis); redrawn as the job records more.

import { h, replaceChildren, setText } from "./dom.js";
import { formatInteger } from "./format.js";
import { heatmap, importanceBars, parallelCoordinates, slice } from "./search-charts.js";

export class SearchView {
  constructor() {
    this.status = h("p", { class: "muted search-status" });
    this.importance = h("div", { class: "search-importance" });
    this.heatmap = h("div", { class: "search-heatmap" });
    this.slices = h("div", { class: "search-slices" });
    this.parallel = h("div", { class: "search-parallel" });
    this.el = h("div", { class: "search-view" }, this.status,
      h("div", { class: "search-grid" },
        h("figure", { class: "search-figure" }, h("figcaption", {}, "Importance: each parameter's share of the score's variance"), this.importance),
        h("figure", { class: "search-figure" }, h("figcaption", { class: "heatmap-caption" }, "Best score by the two most important parameters"), this.heatmap)),
      h("figure", { class: "search-figure" }, h("figcaption", {}, "Slices: the score against each parameter (line: best per value)"), this.slices),
      h("figure", { class: "search-figure" }, h("figcaption", {}, "Parallel coordinates (colour: score, yellow best)"), this.parallel));
    this.analysis = null;
  }

  /** Draw `analysis` (null: nothing yet). */
  show(analysis) {
    this.analysis = analysis;
    this.render();
  }

  render() {
    const a = this.analysis;
    const scored = a?.scored || 0;
    this.el.dataset.scored = scored;
    if (!scored) {
      setText(this.status, "The search's shape appears once episodes have been scored.");
      for (const box of [this.importance, this.heatmap, this.slices, this.parallel]) replaceChildren(box);
      return;
    }
    setText(this.status, `${formatInteger(scored)} scored of ${formatInteger(a.evaluations)} evaluations`
      + (a.points.score.length < scored ? `; the plots show ${formatInteger(a.points.score.length)} of them (the best and an even spread)` : "")
      + `. Importance: ${a.method}.`);
    const width = (box, fallback) => Math.max(240, Math.round(box.clientWidth || fallback));
    replaceChildren(this.importance, importanceBars(a, width(this.importance, 420)));
    replaceChildren(this.heatmap, a.heatmap ? heatmap(a.heatmap, a.objective, width(this.heatmap, 420))
      : h("p", { class: "muted" }, "A score grid needs two parameters that vary."));
    const sliceWidth = Math.max(220, Math.min(360, Math.floor((width(this.slices, 900) - 24) / 3)));
    replaceChildren(this.slices, a.slices.map((part) => h("div", { class: "slice", dataset: { param: part.name } },
      slice(part, a.points, a.objective, sliceWidth))));
    const names = a.slices.filter((part) => part.bins.length > 1).map((part) => part.name);
    replaceChildren(this.parallel, parallelCoordinates(a.points, names, a.objective, width(this.parallel, 900)));
  }
}
