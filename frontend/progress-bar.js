// A labelled progress bar (role="progressbar"), 0–100.

import { h, setText } from "./dom.js";
import { formatPercent } from "./format.js";

export class ProgressBar {
  constructor(label) {
    this.fill = h("div", { class: "bar-fill" });
    this.value = h("span", { class: "bar-value" });
    this.track = h("div", {
      class: "bar-track", role: "progressbar", "aria-label": label,
      "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": 0,
    }, this.fill);
    this.el = h("div", { class: "bar" }, this.track, this.value);
  }

  /** Show `percent` (clamped to 0–100); `state` colours the fill (running, succeeded, failed, …). */
  update(percent, state = "") {
    const value = Math.max(0, Math.min(100, Number(percent) || 0));
    this.fill.style.width = `${value}%`;
    this.track.setAttribute("aria-valuenow", value.toFixed(1));
    this.track.dataset.state = state;
    setText(this.value, formatPercent(value));
  }
}
