// Asks for the API token (TRAD_API_TOKEN) when the server answers 401; kept in localStorage.

import { getToken, setToken } from "./api.js";
import { h } from "./dom.js";

let dialog = null;
let pending = null;

function build() {
  const input = h("input", { id: "token-input", name: "token", type: "password", autocomplete: "current-password", required: true });
  const message = h("p", { id: "token-message" });
  const el = h("dialog", { class: "token-dialog", "aria-labelledby": "token-title", "aria-describedby": "token-message" },
    h("form", { method: "dialog" },
      h("h2", { id: "token-title" }, "Access token needed"), message,
      h("label", { for: "token-input" }, "Token"), input,
      h("div", { class: "dialog-buttons" },
        h("button", { type: "submit", value: "cancel", formnovalidate: true }, "Cancel"),
        h("button", { type: "submit", value: "save", class: "primary" }, "Save token"))));
  document.body.append(el);
  return { el, input, message };
}

/** Ask once at a time; resolves true when a token was saved. */
export function askForToken(reason) {
  if (pending) return pending;
  dialog ||= build();
  dialog.message.textContent = reason;
  dialog.input.value = getToken();
  dialog.el.returnValue = "";
  dialog.el.showModal();
  pending = new Promise((resolve) => {
    dialog.el.addEventListener("close", () => {
      pending = null;
      const saved = dialog.el.returnValue === "save" && dialog.input.value.trim() !== "";
      if (saved) setToken(dialog.input.value.trim());
      resolve(saved);
    }, { once: true });
  });
  return pending;
}
