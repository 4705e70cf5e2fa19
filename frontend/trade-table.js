// A backtest's trades, a page at a time: the whole range or one fold's out-of-sample window, and the CSV of all.

import { api } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { formatDateTime, formatInteger, formatNumber, formatPercent } from "./format.js";

const PAGE_SIZE = 50;

function withQuery(path, query) {
  const params = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null));
  return `${path}?${params}`;
}

function tradeRow(trade) {
  const cls = trade.pnl >= 0 ? "num gain" : "num loss";
  return h("tr", {},
    h("th", { scope: "row", class: "num" }, formatInteger(trade.number)),
    h("td", {}, formatDateTime(trade.entry_time)),
    h("td", {}, formatDateTime(trade.exit_time)),
    h("td", { class: "num" }, formatNumber(trade.entry_price, 4)),
    h("td", { class: "num" }, formatNumber(trade.exit_price, 4)),
    h("td", { class: cls }, formatNumber(trade.pnl, 2)),
    h("td", { class: cls }, formatPercent(100 * trade.return_pct, 2)),
    h("td", {}, trade.exit_reason.replace("_", " ")),
    h("td", { class: "num" }, formatInteger(trade.candles_held)));
}

export class TradeTable {
  constructor() {
    this.foldSelect = h("select", { "aria-label": "Trades of", onchange: () => this.go(1) });
    this.csv = h("a", { class: "csv-link", download: "" }, "Download CSV");
    this.body = h("tbody");
    this.pageText = h("span", { class: "page-text" });
    this.prev = h("button", { type: "button", onclick: () => this.go(this.page - 1) }, "Previous");
    this.next = h("button", { type: "button", onclick: () => this.go(this.page + 1) }, "Next");
    this.el = h("div", { class: "trade-table" },
      h("div", { class: "list-controls" }, this.foldSelect, this.csv),
      h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": "Trades" },
        h("table", {}, h("thead", {}, h("tr", {}, ["#", "Entry", "Exit", "Entry price", "Exit price", "PnL", "Return",
          "Exit reason", "Candles"].map((t, i) => h("th", { scope: "col", class: [0, 3, 4, 5, 6, 8].includes(i) ? "num" : null }, t)))),
        this.body)),
      h("div", { class: "pager" }, this.prev, this.pageText, this.next));
  }

  /** Show `view.trades` (the first page) of backtest `view`; further pages come from `path` (its URL). */
  show(view, path) {
    this.path = path;
    const options = [[0, "Whole range"], ...view.folds.map((f) => [f.fold, `Fold ${f.fold} (out of sample)`])];
    this.foldSelect.replaceChildren(...options.map(([value, text]) => h("option", { value }, text)));
    this.foldSelect.hidden = options.length < 2;
    this.render(view.trades);
  }

  async go(page) {
    const fold = Number(this.foldSelect.value || 0);
    try {
      const view = await api(this.path, { query: { page, page_size: PAGE_SIZE, fold } });
      this.render(view.trades);
    } catch (error) {
      setText(this.pageText, `Could not load the trades: ${error.message}`);
    }
  }

  render(trades) {
    this.page = trades.meta.page;
    this.csv.href = withQuery(this.path, { format: "csv", fold: trades.fold || undefined });
    replaceChildren(this.body, trades.items.length ? trades.items.map(tradeRow)
      : h("tr", {}, h("td", { colspan: 9, class: "muted" }, "No trades.")));
    const { page, total_pages: pages, total } = trades.meta;
    setText(this.pageText, `Page ${formatInteger(page)} of ${formatInteger(Math.max(1, pages))} · ${formatInteger(total)} trades`);
    this.prev.disabled = page <= 1;
    this.next.disabled = page >= pages;
    this.el.dataset.total = total;
  }
}

export { PAGE_SIZE };
