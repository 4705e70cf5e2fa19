// The job list: one page of cards from the REST list, kept live by the job stream.

import { api } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { formatInteger } from "./format.js";
import { JobCard } from "./job-card.js";
import { STATUSES } from "./job-status.js";

const PAGE_SIZE = 12;
const REFRESH_DELAY_MS = 400;

/** Newest first, as the API sorts: created_at, then id. */
function newerThan(a, b) {
  const ta = Date.parse(a.created_at);
  const tb = Date.parse(b.created_at);
  return ta !== tb ? ta > tb : a.id > b.id;
}

export class JobList {
  /** rows: the page's map of newest rows by id (shared with the detail); onError(error). */
  constructor(container, { rows, onError }) {
    this.rows = rows;
    this.onError = onError;
    this.cards = new Map();
    this.status = "";
    this.page = 1;
    this.meta = null;
    this.loading = null;
    this.changedWhileLoading = false;
    this.refreshTimer = null;
    this.render(container);
  }

  render(container) {
    const filterId = "job-status-filter";
    this.filter = h("select", { id: filterId, onchange: () => this.setStatus(this.filter.value) },
      h("option", { value: "" }, "All"), STATUSES.map((s) => h("option", { value: s }, s)));
    this.summary = h("p", { class: "list-summary", "aria-live": "polite" });
    this.grid = h("div", { class: "job-grid" });
    this.empty = h("p", { class: "empty", hidden: true });
    this.previous = h("button", { type: "button", onclick: () => this.setPage(this.page - 1) }, "← Newer");
    this.next = h("button", { type: "button", onclick: () => this.setPage(this.page + 1) }, "Older →");
    this.pageLabel = h("span", { class: "page-label" });
    replaceChildren(container,
      h("div", { class: "list-controls" },
        h("label", { for: filterId }, "Status"), this.filter, this.summary),
      this.grid, this.empty,
      h("nav", { class: "pager", "aria-label": "Job pages" }, this.previous, this.pageLabel, this.next));
  }

  setStatus(status) {
    this.status = status;
    this.page = 1;
    this.load();
  }

  setPage(page) {
    this.page = Math.max(1, page);
    this.load();
  }

  /** Fetch the current page (again). */
  async load() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.changedWhileLoading = false;
    const request = api("/api/v1/training-jobs", {
      query: { page: this.page, page_size: PAGE_SIZE, status: this.status },
    });
    this.loading = request;
    try {
      const data = await request;
      if (this.loading !== request) return;
      this.meta = data.meta;
      if (this.page > 1 && data.items.length === 0 && data.meta.total > 0) {
        this.setPage(data.meta.total_pages);
        return;
      }
      this.show(data.items.map((item) => this.newest(item)));
    } catch (error) {
      if (this.loading === request) this.onError(error);
    } finally {
      if (this.loading === request) {
        this.loading = null;
        if (this.changedWhileLoading) this.scheduleRefresh();
      }
    }
  }

  /** The newer of a fetched row and the one the stream delivered. */
  newest(row) {
    const known = this.rows.get(row.id);
    if (known && known.version >= row.version) return known;
    this.rows.set(row.id, row);
    return row;
  }

  show(items) {
    const shown = new Map();
    for (const row of items) {
      const card = this.cards.get(row.id) || new JobCard(row);
      card.update(row);
      shown.set(row.id, card);
    }
    this.cards = shown;
    this.grid.replaceChildren(...[...shown.values()].map((card) => card.el));
    this.renderMeta();
  }

  renderMeta() {
    const meta = this.meta || { total: this.cards.size, total_pages: 1 };
    const what = this.status ? `${this.status} jobs` : "jobs";
    setText(this.summary, `${formatInteger(meta.total)} ${meta.total === 1 ? what.replace(/s$/, "") : what}`);
    this.empty.hidden = this.cards.size > 0;
    setText(this.empty, this.status ? `No ${this.status} jobs.` : "No training jobs yet: start one with the form.");
    setText(this.pageLabel, `Page ${formatInteger(this.page)} of ${formatInteger(Math.max(1, meta.total_pages))}`);
    this.previous.disabled = this.page <= 1;
    this.next.disabled = this.page >= meta.total_pages;
  }

  /** A row from the stream: update its card; a new job that belongs on this page reloads it. */
  applyRow(row) {
    const card = this.cards.get(row.id);
    if (card) {
      card.update(row);
      if (this.status && row.status !== this.status) this.scheduleRefresh();
      return;
    }
    if (this.loading) {
      this.changedWhileLoading = true;
    } else if (this.belongsHere(row)) {
      this.scheduleRefresh();
    }
  }

  belongsHere(row) {
    if (this.page !== 1 || (this.status && row.status !== this.status)) return false;
    const cards = [...this.cards.values()];
    if (cards.length < PAGE_SIZE) return true;
    return newerThan(row, cards[cards.length - 1].row);
  }

  removeJob(id) {
    const card = this.cards.get(id);
    if (!card) return;
    card.el.remove();
    this.cards.delete(id);
    this.scheduleRefresh();
  }

  scheduleRefresh() {
    if (this.loading) {
      this.changedWhileLoading = true;
      return;
    }
    if (!this.refreshTimer) this.refreshTimer = setTimeout(() => this.load(), REFRESH_DELAY_MS);
  }

  /** Count the ETAs down. */
  tick() {
    for (const card of this.cards.values()) {
      if (card.row.status === "running") card.tick();
    }
  }
}
