// A modal yes/no question (<dialog>); resolves to true when confirmed.

import { h } from "./dom.js";

let dialog = null;

function build() {
  const title = h("h2", { id: "confirm-title" });
  const text = h("p", { id: "confirm-text" });
  const yes = h("button", { type: "submit", value: "yes", class: "danger" });
  const no = h("button", { type: "submit", value: "no", autofocus: true }, "Cancel");
  const el = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title", "aria-describedby": "confirm-text" },
    h("form", { method: "dialog" }, title, text, h("div", { class: "dialog-buttons" }, no, yes)));
  document.body.append(el);
  return { el, title, text, yes };
}

/** Ask `question`; `action` names the confirming button ("Delete job"). */
export function confirmAction(title, question, action) {
  dialog ||= build();
  dialog.title.textContent = title;
  dialog.text.textContent = question;
  dialog.yes.textContent = action;
  dialog.el.returnValue = "";
  dialog.el.showModal();
  return new Promise((resolve) => {
    dialog.el.addEventListener("close", () => resolve(dialog.el.returnValue === "yes"), { once: true });
  });
}
