/* Hash routes, one view per page: `#/<view>` or `#/<view>/<id>` (e.g. `#/history/<run_id>`).
 *
 * A view registers {title, show(id)}; `show` loads and renders it and may reject (shown as a
 * toast). Its section is `#view-<name>`, its tab `#nav-<name>`.
 */
import { $, $all } from "./dom.js";
import { session } from "./session.js";
import { reportError } from "./toasts.js";

const views = new Map();
let current = null;
const DEFAULT = "schedules";

export function registerView(name, view) {
  views.set(name, view);
}

export function currentView() {
  return current;
}

export function parseHash(hash) {
  const match = /^#\/([\w-]+)(?:\/([^/?#]+))?/.exec(hash || "");
  return match ? { name: match[1], id: match[2] ? decodeURIComponent(match[2]) : null } : null;
}

export function route() {
  if (!session.token) { showSection("auth"); return; }
  const target = parseHash(location.hash);
  if (!target || !views.has(target.name)) {
    location.replace("#/" + (current && views.has(current) ? current : DEFAULT));
    return; // hashchange routes again
  }
  showSection(target.name);
  Promise.resolve(views.get(target.name).show(target.id)).catch(reportError);
}

/** Show one section, mark its tab, title the document; "auth" is the signed-out page. */
export function showSection(name) {
  current = name;
  $all(".view").forEach((view) => { view.hidden = view.id !== "view-" + name; });
  const signedIn = name !== "auth";
  $("#topbar").hidden = !signedIn;
  $all(".tabs a").forEach((tab) => {
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  });
  const view = views.get(name);
  document.title = (signedIn && view ? view.title + " · " : "") + "Benchmark Scheduler";
}
