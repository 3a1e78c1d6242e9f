/* Toasts: at most MAX on screen, newest first; good news leaves on its own, bad news waits
 * for the user (or for newer toasts to push it out). */
import { $, h } from "./dom.js";

const MAX = 3;
const AUTO_DISMISS_MS = { ok: 5000, info: 5000 };

/** kind: ok | info | warn | error. `link`: {href, label} shown under the text. */
export function toast(kind, title, text, link) {
  const box = $("#toasts");
  const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Dismiss: " + title }, "×");
  const el = h(
    "div",
    { class: "toast toast-" + kind, role: kind === "error" || kind === "warn" ? "alert" : "status", "data-testid": "toast", "data-kind": kind },
    h("div", { class: "toast-text" },
      h("strong", {}, title),
      text ? h("span", { class: "toast-detail" }, text) : null,
      link ? h("a", { href: link.href, class: "toast-link" }, link.label) : null),
    close
  );
  const remove = () => el.remove();
  close.addEventListener("click", remove);
  if (link) el.querySelector(".toast-link").addEventListener("click", remove);
  box.prepend(el);
  while (box.children.length > MAX) box.lastElementChild.remove();
  if (AUTO_DISMISS_MS[kind]) setTimeout(remove, AUTO_DISMISS_MS[kind]);
  return el;
}

export function clearToasts() {
  $("#toasts").replaceChildren();
}

export function reportError(err) {
  if (err && err.status === 401) return; // the session ended: sign-in says so
  toast("error", "Something went wrong", err && err.message ? err.message : String(err));
}
