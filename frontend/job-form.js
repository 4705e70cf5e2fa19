// The new-job form, built from GET /api/v1/strategies; the API's field errors appear under the fields.

import { api } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { field, numberValue, setOptions, showApiError, clearFieldErrors } from "./form-fields.js";
import { formatDate, formatInteger, formatValue } from "./format.js";
import { countFolds, proposeWindows, spanDays } from "./walk-forward.js";

const P = "job";
const WINDOWS = ["train_window_days", "test_window_days", "gap_days"];

/** The symbol alone: its candles are described under the field, where there is room. */
function symbolOptions(symbols) {
  return symbols.map((s) => [s.symbol, s.symbol]);
}

export class JobForm {
  /** catalog: GET /api/v1/strategies; symbols: GET /api/v1/training/symbols → .symbols. */
  constructor(container, { onCreated }) {
    this.onCreated = onCreated;
    this.container = container;
    this.catalog = null;
    this.symbols = [];
  }

  load(catalog, symbols) {
    this.catalog = catalog;
    this.symbols = symbols;
    this.build();
  }

  build() {
    const { strategies, optimizers, objectives, timeframes } = this.catalog;
    const f = (name, label, control, hint) => field(P, name, label, control, hint);
    this.summary = h("div", { class: "form-errors", role: "alert", hidden: true });
    this.done = h("p", { class: "form-done", role: "status" });
    this.paramBox = h("div", { class: "param-space" });
    this.dataHint = h("p", { class: "hint data-hint", id: `${P}-data-hint` });
    this.windowHint = h("p", { class: "hint", id: `${P}-windows-hint`, "aria-live": "polite" });
    this.windowsEdited = false;
    this.submit = h("button", { type: "submit", class: "primary" }, "Start training");
    this.form = h("form", { class: "job-form", novalidate: true, onsubmit: (e) => this.send(e) },
      this.summary,
      f("job_name", "Name", { type: "text", maxlength: 200, placeholder: "strategy symbol timeframe (optimizer)" }),
      h("div", { class: "row" },
        f("strategy", "Strategy", { select: strategies.map((s) => [s.name, s.name]) }),
        f("symbol", "Symbol", { select: symbolOptions(this.symbols) })),
      h("div", { class: "row" },
        f("timeframe", "Timeframe", { select: timeframes.map((t) => [t, t]) }),
        f("optimizer", "Optimizer", { select: optimizers.map((o) => [o, o]), value: "random" }),
        f("objective", "Objective", { select: objectives.map((o) => [o, o]), value: "sharpe" })),
      this.dataHint,
      h("div", { class: "row row-4" },
        f("n_iterations", "Episodes", { type: "number", inputmode: "numeric", value: 50 }),
        f("n_jobs", "Processes", { type: "number", inputmode: "numeric", value: 1 }),
        f("seed", "Seed", { type: "number", inputmode: "numeric", placeholder: "random" }),
        f("min_trades", "Min. trades", { type: "number", inputmode: "numeric", value: 5 })),
      h("p", { class: "hint", id: `${P}-iterations-hint` },
        "Episodes: configurations tried by random and Bayesian search (grid search tries its whole grid). Processes: backtests run in parallel."),
      h("fieldset", { class: "validation", dataset: { field: "validation" } },
        h("legend", {}, "Walk-forward validation"),
        h("p", { class: "field-error", hidden: true }),
        f("validation.enabled", "Validate the best configurations out of sample", { type: "checkbox", checked: true }),
        h("div", { class: "row row-4" },
          f("validation.train_window_days", "Train days", { type: "number", value: 90 }),
          f("validation.test_window_days", "Test days", { type: "number", value: 30 }),
          f("validation.gap_days", "Gap days", { type: "number", value: 0 })),
        this.windowHint),
      h("details", { class: "param-details" }, h("summary", {}, "Parameter space"), this.paramBox),
      h("div", { class: "form-actions" }, this.submit), this.done);
    replaceChildren(this.container, this.form);
    this.listen();
    this.buildParams();
    this.pickTimeframe();
  }

  /** Wire the controls: a new symbol or timeframe proposes fitting windows; windows typed in are kept. */
  listen() {
    const iterations = this.input("n_iterations");
    iterations.setAttribute("aria-describedby", `${P}-iterations-hint ${iterations.getAttribute("aria-describedby")}`);
    this.input("strategy").addEventListener("change", () => this.buildParams());
    this.input("symbol").setAttribute("aria-describedby", `${P}-data-hint ${this.input("symbol").getAttribute("aria-describedby")}`);
    this.input("symbol").addEventListener("change", () => this.pickTimeframe());
    this.input("timeframe").addEventListener("change", () => this.fitWindows());
    this.input("validation.enabled").addEventListener("change", () => this.toggleWindows());
    for (const key of WINDOWS) {
      this.input(`validation.${key}`).addEventListener("input", () => {
        this.windowsEdited = true;
        this.describeWindows();
      });
    }
  }

  input(name) {
    return this.form.elements.namedItem(name);
  }

  /** New symbols (candles were added): keep the selection when possible. */
  setSymbols(symbols) {
    this.symbols = symbols;
    if (!this.form) return;
    setOptions(this.input("symbol"), symbolOptions(symbols));
    if (this.windowsEdited) this.describeWindows();
    else this.fitWindows();
  }

  strategy() {
    return this.catalog.strategies.find((s) => s.name === this.input("strategy").value);
  }

  buildParams() {
    const strategy = this.strategy();
    const rows = (strategy?.params || []).map((p) => {
      const name = `param_space.${p.name}`;
      const header = h("legend", {}, p.name, h("span", { class: "sub" }, ` default ${formatValue(p.default)}`));
      if (p.type === "categorical") {
        return h("fieldset", { class: "param", dataset: { field: name } }, header,
          h("p", { class: "field-error", hidden: true }),
          p.choices.map((c) => field(P, `${name}.choices.${c}`, formatValue(c), { type: "checkbox", checked: true, value: c })));
      }
      const num = (key, value) => field(P, `${name}.${key}`, key, { type: "number", value: value ?? "", step: "any" });
      return h("fieldset", { class: "param", dataset: { field: name } }, header,
        h("p", { class: "field-error", hidden: true }),
        h("div", { class: "row" }, num("low", p.low), num("high", p.high), num("step", p.step)));
    });
    replaceChildren(this.paramBox, strategy?.description ? h("p", { class: "muted" }, strategy.description) : null,
      rows.length ? h("p", { class: "hint" }, "Narrow the search inside the strategy's bounds.") : null, rows);
  }

  pickTimeframe() {
    const symbol = this.symbols.find((s) => s.symbol === this.input("symbol").value);
    if (symbol?.timeframes.length) this.input("timeframe").value = symbol.timeframes[0].timeframe;
    this.fitWindows();
  }

  /** The stored candles of the chosen symbol and timeframe: {timeframe, candles, first, last}, or undefined. */
  candleRange() {
    const symbol = this.symbols.find((s) => s.symbol === this.input("symbol").value);
    return symbol?.timeframes.find((t) => t.timeframe === this.input("timeframe").value);
  }

  /** Propose walk-forward windows that give several folds over the chosen candles. */
  fitWindows() {
    const range = this.candleRange();
    const proposal = range && proposeWindows(spanDays(range.first, range.last));
    if (proposal) {
      this.input("validation.train_window_days").value = proposal.train;
      this.input("validation.test_window_days").value = proposal.test;
      this.input("validation.gap_days").value = proposal.gap;
      this.windowsEdited = false;
    }
    this.describeWindows();
  }

  /** What the chosen candles are, and how many folds the windows give over them. */
  describeWindows() {
    const range = this.candleRange();
    const symbol = this.input("symbol").value;
    const timeframe = this.input("timeframe").value;
    const span = range ? spanDays(range.first, range.last) : 0;
    setText(this.dataHint, !this.symbols.length ? "No candles stored yet: `trad data synth --symbol DEMO`."
      : range ? `${formatInteger(range.candles)} candles, ${formatDate(range.first)} – ${formatDate(range.last)} (${formatInteger(span)} days).`
        : `No ${timeframe} candles of ${symbol} are stored.`);
    const days = WINDOWS.map((key) => numberValue(this.input(`validation.${key}`)));
    const folds = countFolds(span, ...days);
    setText(this.windowHint, !range ? ""
      : folds ? `${formatInteger(folds)} fold${folds === 1 ? "" : "s"} over the ${formatInteger(span)} days of ${symbol} ${timeframe}.`
        : `No fold fits in the ${formatInteger(span)} days of ${symbol} ${timeframe}: the server will refuse these windows.`);
    this.windowHint.classList.toggle("warn", Boolean(range) && !folds);
  }

  toggleWindows() {
    const on = this.input("validation.enabled").checked;
    for (const key of WINDOWS) this.input(`validation.${key}`).disabled = !on;
    this.windowHint.hidden = !on;
  }

  /** The request body: defaults left out, parameter bounds only where they differ from the strategy's. */
  body() {
    const value = (name) => this.input(name).value;
    const body = {
      strategy: value("strategy"), symbol: value("symbol"), timeframe: value("timeframe"),
      optimizer: value("optimizer"), objective: value("objective"),
    };
    if (value("job_name").trim()) body.job_name = value("job_name").trim();
    for (const name of ["n_iterations", "n_jobs", "seed", "min_trades"]) {
      const n = numberValue(this.input(name));
      if (n !== null) body[name] = n;
    }
    body.validation = { enabled: this.input("validation.enabled").checked };
    if (body.validation.enabled) {
      for (const key of WINDOWS) {
        const n = numberValue(this.input(`validation.${key}`));
        if (n !== null) body.validation[key] = n;
      }
    }
    const space = this.paramSpace();
    if (Object.keys(space).length) body.param_space = space;
    return body;
  }

  paramSpace() {
    const space = {};
    for (const p of this.strategy()?.params || []) {
      const name = `param_space.${p.name}`;
      if (p.type === "categorical") {
        const boxes = [...this.form.querySelectorAll(`[data-field^="${CSS.escape(name)}.choices."] input`)];
        const chosen = boxes.filter((b) => b.checked).map((b) => p.choices[boxes.indexOf(b)]);
        if (chosen.length !== p.choices.length) space[p.name] = { choices: chosen };
        continue;
      }
      const range = {};
      for (const key of ["low", "high", "step"]) range[key] = numberValue(this.input(`${name}.${key}`));
      if (range.low !== p.low || range.high !== p.high || range.step !== p.step) {
        space[p.name] = Object.fromEntries(Object.entries(range).filter(([, v]) => v !== null));
      }
    }
    return space;
  }

  async send(event) {
    event.preventDefault();
    clearFieldErrors(this.form, this.summary);
    setText(this.done, "");
    this.submit.disabled = true;
    try {
      const row = await api("/api/v1/training-jobs", { method: "POST", body: this.body() });
      replaceChildren(this.done, `Job #${row.id} queued: `, h("a", { href: `#/jobs/${row.id}` }, row.job_name));
      this.onCreated(row);
    } catch (error) {
      showApiError(this.form, this.summary, error);
    } finally {
      this.submit.disabled = false;
    }
  }
}
