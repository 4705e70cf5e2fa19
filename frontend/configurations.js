// "Trained configurations": every saved winner, a table per symbol · strategy · timeframe, newest first.
// A row opens its job, or, when the job was deleted, the backtest stored with the configuration.

import { api } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { formatDate, formatDateTime, formatInteger, formatParams, formatScore } from "./format.js";

const PAGE_SIZE = 200;
const MAX_PAGES = 5;

/** The configurations grouped by symbol · strategy · timeframe, groups in the order of their newest. */
export function groupConfigurations(items) {
  const groups = new Map();
  for (const item of items) {
    const key = `${item.symbol} · ${item.strategy} · ${item.timeframe}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(item);
  }
  return [...groups.entries()];
}

function openLink(item) {
  if (item.job_exists) return h("a", { href: `#/jobs/${item.job_id}` }, `Job #${item.job_id}`);
  if (item.backtest_id) {
    return h("a", { href: `#/backtests/${item.backtest_id}`, title: "The job was deleted; its backtest was kept" },
      `Backtest #${item.backtest_id}`, h("span", { class: "sub" }, item.job_id ? `job #${item.job_id} deleted` : "job deleted"));
  }
  return h("span", { class: "muted" }, "job deleted");
}

function configurationRow(item) {
  const wf = item.walk_forward;
  return h("tr", { dataset: { configuration: item.id } },
    h("td", { class: "num" }, formatScore(item.score)),
    h("td", { class: "num" }, formatScore(wf?.mean_out_of_sample_score)),
    h("td", { class: "num" }, formatScore(wf?.degradation)),
    h("td", { class: "num" }, !wf ? "off" : wf.folds ? `${formatInteger(wf.scored_folds ?? 0)}/${formatInteger(wf.folds)}`
      : h("span", { title: wf.skipped || "" }, "skipped")),
    h("td", { class: "params" }, formatParams(item.params)),
    h("td", { class: "window" }, `${formatDate(item.data_start)} – ${formatDate(item.data_end)}`),
    h("td", {}, formatDateTime(item.created_at)),
    h("td", { class: "open" }, openLink(item)));
}

export class ConfigurationsPage {
  constructor(container) {
    this.status = h("p", { class: "muted" });
    this.tables = h("div", { class: "configuration-groups" });
    replaceChildren(container, h("article", { class: "configurations" },
      h("a", { class: "back", href: "#/" }, "← All jobs"),
      h("h2", { id: "configurations-title", tabindex: -1 }, "Trained configurations"),
      h("p", { class: "muted" }, "The winner of every succeeded training job, with its walk-forward summary: "
        + "mean out-of-sample score and degradation (mean in-sample − mean out-of-sample)."),
      this.status, this.tables));
  }

  async load() {
    setText(this.status, "Loading…");
    try {
      const items = [];
      for (let page = 1; page <= MAX_PAGES; page += 1) {
        const answer = await api("/api/v1/trained-configurations", { query: { page, page_size: PAGE_SIZE } });
        items.push(...answer.items);
        if (page >= answer.meta.total_pages) break;
      }
      this.render(items);
    } catch (error) {
      setText(this.status, `Could not load the configurations: ${error.message}`);
    }
  }

  render(items) {
    setText(this.status, items.length ? `${formatInteger(items.length)} trained configurations.`
      : "No trained configurations yet: a job saves one when it succeeds.");
    replaceChildren(this.tables, groupConfigurations(items).map(([name, rows]) => h("section", { class: "panel configuration-group" },
      h("h3", {}, name),
      h("div", { class: "table-scroll", tabindex: 0, role: "region", "aria-label": name },
        h("table", {}, h("caption", { class: "sr-only" }, name),
          h("thead", {}, h("tr", {}, ["Score", "Mean OOS", "Degradation", "Folds", "Parameters", "Trained on", "Saved", "Open"]
            .map((t, i) => h("th", { scope: "col", class: i < 4 ? "num" : null }, t)))),
          h("tbody", {}, rows.map(configurationRow)))))));
  }
}
