// A job's log lines: the newest ones, tailed by polling while the job runs.

import { api } from "./api.js";
import { h, setText } from "./dom.js";
import { formatInteger } from "./format.js";

const PAGE_SIZE = 200;
const POLL_MS = 2000;
const KEEP_LINES = 500;

export class LogPane {
  constructor() {
    this.list = h("ol", { class: "log-lines", role: "log", "aria-label": "Job log" });
    this.note = h("p", { class: "muted log-note" });
    this.el = h("div", { class: "log-pane" }, this.note,
      h("div", { class: "log-scroll", tabindex: 0 }, this.list));
    this.jobId = null;
    this.count = 0;
    this.timer = null;
    this.fetching = null;
  }

  /** Show the log of another job (from its newest lines). */
  open(jobId) {
    this.close();
    this.jobId = jobId;
    this.count = 0;
    this.skipped = 0;
    this.list.replaceChildren();
    setText(this.note, "Loading…");
    return this.refresh();
  }

  close() {
    this.stopTail();
    this.jobId = null;
    this.again = false;
  }

  /** Poll every 2 s (while the job runs); stopTail() ends it. */
  tail() {
    if (this.timer || this.jobId === null) return;
    const jobId = this.jobId;
    const poll = async () => {
      await this.refresh();
      if (this.timer && this.jobId === jobId) this.timer = setTimeout(poll, POLL_MS);
    };
    this.timer = setTimeout(poll, POLL_MS);
  }

  stopTail() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Fetch the lines after those shown; on the first call, start at the last two pages. */
  refresh() {
    if (this.fetching) {
      this.again = true;
      return this.fetching;
    }
    this.fetching = this.fetchNew().finally(() => {
      this.fetching = null;
      if (this.again && this.jobId !== null) {
        this.again = false;
        this.refresh();
      }
    });
    return this.fetching;
  }

  async fetchNew() {
    const jobId = this.jobId;
    try {
      if (this.count === 0) {
        const first = await api(`/api/v1/training-jobs/${jobId}/logs`, { query: { page: 1, page_size: 1 } });
        if (this.jobId !== jobId) return;
        this.count = Math.max(0, first.meta.total - PAGE_SIZE * 2);
        this.skipped = this.count;
      }
      for (;;) {
        const page = Math.floor(this.count / PAGE_SIZE) + 1;
        const data = await api(`/api/v1/training-jobs/${jobId}/logs`, { query: { page, page_size: PAGE_SIZE } });
        if (this.jobId !== jobId) return;
        const fresh = data.logs.slice(this.count - (page - 1) * PAGE_SIZE);
        this.append(fresh);
        this.count += fresh.length;
        if (data.logs.length < PAGE_SIZE || !fresh.length) break;
      }
      const earlier = this.skipped + Math.max(0, this.count - this.skipped - this.list.children.length);
      setText(this.note, this.count === 0 ? "No log lines yet."
        : earlier > 0 ? `${formatInteger(earlier)} earlier lines not shown.` : "");
      this.note.hidden = !this.note.textContent;
    } catch (error) {
      if (this.jobId === jobId) {
        setText(this.note, `Could not load the log: ${error.message}`);
        this.note.hidden = false;
      }
    }
  }

  append(lines) {
    if (!lines.length) return;
    const scroller = this.list.parentElement;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 24;
    for (const line of lines) {
      const time = new Date(line.timestamp);
      this.list.append(h("li", { class: `log-${line.level.toLowerCase()}` },
        h("time", { datetime: line.timestamp }, time.toLocaleTimeString()),
        h("span", { class: "log-level" }, line.level),
        h("span", { class: "log-message" }, line.message)));
    }
    while (this.list.children.length > KEEP_LINES) this.list.firstElementChild.remove();
    if (atBottom) scroller.scrollTop = scroller.scrollHeight;
  }
}
