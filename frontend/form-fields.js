// Labelled form fields named after the API's field paths, and the API's field errors shown under them.

import { h, replaceChildren } from "./dom.js";

function fieldId(prefix, name) {
  return `${prefix}-${name.replace(/[^A-Za-z0-9_-]/g, "-")}`;
}

/** A labelled control: `control` is "input" attrs, or {select: [[value, text], …]}. */
export function field(prefix, name, label, control, hint = "") {
  const id = fieldId(prefix, name);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [hintId, errorId].filter(Boolean).join(" ");
  const input = control.select
    ? h("select", { id, name, "aria-describedby": describedBy },
      control.select.map(([value, text]) => h("option", { value }, text)))
    : h("input", { id, name, "aria-describedby": describedBy, ...control });
  if (control.value !== undefined && control.select) input.value = control.value;
  const isCheckbox = control.type === "checkbox";
  const labelEl = h("label", { for: id }, label);
  return h("div", { class: `field${isCheckbox ? " field-check" : ""}`, dataset: { field: name } },
    isCheckbox ? [input, labelEl] : [labelEl, input],
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    h("p", { class: "field-error", id: errorId, hidden: true }));
}

/** Replace the options of a select, keeping its value when it still exists. */
export function setOptions(select, options, preferred) {
  const keep = preferred ?? select.value;
  select.replaceChildren(...options.map(([value, text]) => h("option", { value }, text)));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

/** The value of a number input: a number, null when empty, the raw text when it is not a number. */
export function numberValue(input) {
  const raw = input.value.trim();
  if (raw === "") return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : raw;
}

export function clearFieldErrors(form, summary) {
  for (const el of form.querySelectorAll(".field-error")) {
    el.textContent = "";
    el.hidden = true;
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  replaceChildren(summary);
  summary.hidden = true;
}

/** The element showing errors of `path` ("param_space.fast.low"), or of its nearest parent. */
function errorTarget(form, path) {
  const parts = path.split(".");
  while (parts.length) {
    const wrapper = form.querySelector(`[data-field="${CSS.escape(parts.join("."))}"]`);
    if (wrapper) return wrapper;
    parts.pop();
  }
  return null;
}

/** Show an ApiError: each detail under its field (prefix stripped), the rest in `summary`. */
export function showApiError(form, summary, error, prefix = "") {
  clearFieldErrors(form, summary);
  const unplaced = [];
  let first = null;
  for (const detail of error.details || []) {
    const path = prefix && detail.field.startsWith(prefix) ? detail.field.slice(prefix.length) : detail.field;
    const wrapper = errorTarget(form, path);
    const message = wrapper?.querySelector(":scope > .field-error");
    if (!message) {
      unplaced.push(`${detail.field}: ${detail.issue}`);
      continue;
    }
    const rest = path.slice(wrapper.dataset.field.length + 1);
    const exact = !rest || /^\d+$/.test(rest) ? "" : `${rest}: `;
    message.textContent = message.textContent ? `${message.textContent}; ${exact}${detail.issue}` : `${exact}${detail.issue}`;
    message.hidden = false;
    const input = wrapper.querySelector("input, select");
    input?.setAttribute("aria-invalid", "true");
    first ||= input;
  }
  const lines = unplaced.length || !error.details?.length ? [error.message, ...unplaced]
    : ["Correct the marked fields and try again."];
  {
    replaceChildren(summary, h("p", {}, lines[0]), lines.length > 1 ? h("ul", {}, lines.slice(1).map((l) => h("li", {}, l))) : null);
    summary.hidden = false;
  }
  first?.focus();
}
