// "Live" / "Reconnecting…" / "Token needed": the state of the job stream, always visible.

import { h, setText } from "./dom.js";

const TEXT = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", locked: "Token needed" };

export class LiveIndicator {
  constructor(container) {
    this.label = h("span", { class: "live-label" });
    this.el = h("span", { class: "live", role: "status", title: "Job updates pushed by the server" },
      h("span", { class: "live-dot", "aria-hidden": "true" }), this.label);
    container.replaceChildren(this.el);
    this.set("connecting");
  }

  set(state) {
    this.el.dataset.state = state;
    setText(this.label, TEXT[state] || state);
  }
}
