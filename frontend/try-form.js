// "Try these parameters": backtest one configuration now (POST /api/v1/backtests, run by a worker)
// and show it like the best configuration; the API's field errors appear under the fields.

import { api } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { BacktestPanel } from "./backtest-panel.js";
import { clearFieldErrors, field, numberValue, showApiError } from "./form-fields.js";

const P = "try";

function dateOnly(value) {
  return value ? String(value).slice(0, 10) : "";
}

export class TryForm {
  constructor() {
    this.summary = h("div", { class: "form-errors", role: "alert", hidden: true });
    this.paramBox = h("div", { class: "row row-4 try-params" });
    this.status = h("p", { class: "form-done", role: "status" });
    this.submit = h("button", { type: "submit", class: "primary" }, "Backtest");
    this.form = h("form", { class: "try-form", novalidate: true, onsubmit: (e) => this.send(e) },
      this.summary, this.paramBox,
      h("div", { class: "row row-4" },
        field(P, "start", "From", { type: "date" }), field(P, "end", "To", { type: "date" }),
        field(P, "fee_rate", "Fee rate", { type: "number", step: "any", inputmode: "decimal" })),
      h("div", { class: "form-actions" }, this.submit, h("button", { type: "button", onclick: () => this.reset() }, "Reset to the best")),
      this.status);
    this.result = new BacktestPanel();
    this.result.el.hidden = true;
    this.el = h("div", { class: "try-box" }, this.form, this.result.el);
    this.context = null;
    this.edited = false;
    this.form.addEventListener("input", () => { this.edited = true; });
  }

  /**
   * The job to try against: {strategy, symbol, timeframe, params, start, end, settings} and the
   * strategy's description from GET /api/v1/strategies. A form the user has edited keeps its values.
   */
  prepare(context, strategy) {
    const same = this.context && this.context.jobId === context.jobId && this.context.strategy === context.strategy;
    this.context = context;
    this.strategy = strategy;
    if (same && this.edited) return;
    this.fill();
  }

  fill() {
    const { params, start, end, settings } = this.context;
    replaceChildren(this.paramBox, this.strategy.params.map((p) => {
      const value = params?.[p.name] ?? p.default;
      const control = p.type === "categorical"
        ? { select: p.choices.map((c) => [c, String(c)]), value }
        : { type: "number", step: p.type === "int" ? 1 : "any", min: p.low, max: p.high, value, inputmode: "decimal" };
      return field(P, `params.${p.name}`, p.name, control);
    }));
    this.input("start").value = dateOnly(start);
    this.input("end").value = dateOnly(end);
    this.input("fee_rate").value = settings?.fee_rate ?? 0.0005;
    this.edited = false;
  }

  reset() {
    clearFieldErrors(this.form, this.summary);
    this.fill();
  }

  input(name) {
    return this.form.querySelector(`[name="${CSS.escape(name)}"]`);
  }

  body() {
    const { strategy, symbol, timeframe, settings } = this.context;
    const params = {};
    for (const p of this.strategy.params) {
      const input = this.input(`params.${p.name}`);
      const raw = p.type === "categorical" ? input.value : numberValue(input);
      if (raw !== null) params[p.name] = p.type === "categorical" ? (p.choices.find((c) => String(c) === raw) ?? raw) : raw;
    }
    const body = { strategy, symbol, timeframe, params, fee_rate: numberValue(this.input("fee_rate")) ?? undefined,
      slippage: settings?.slippage, position_size_pct: settings?.position_size_pct };
    // A day of the job's own first or last candle means that candle (the day may begin before it).
    const moment = (name, time) => {
      const day = this.input(name).value;
      if (day) body[name] = day === dateOnly(this.context[name]) ? this.context[name] : `${day}T${time}Z`;
    };
    moment("start", "00:00:00");
    moment("end", "23:59:59");
    return body;
  }

  async send(event) {
    event.preventDefault();
    clearFieldErrors(this.form, this.summary);
    this.submit.disabled = true;
    setText(this.status, "Running on a worker…");
    try {
      const view = await api("/api/v1/backtests", { method: "POST", body: this.body() });
      setText(this.status, `Backtest #${view.id} done.`);
      this.result.el.hidden = false;
      this.result.show(view, `/api/v1/backtests/${view.id}`);
    } catch (error) {
      setText(this.status, "");
      showApiError(this.form, this.summary, error);
    } finally {
      this.submit.disabled = false;
    }
  }

  resize() {
    this.result.resize();
  }

  close() {
    this.result.close();
    this.result.el.hidden = true;
    setText(this.status, "");
  }
}
