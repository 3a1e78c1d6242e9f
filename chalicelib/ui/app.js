/* Benchmark Scheduler UI: ES modules, no framework, no build step.
 *
 * Talks only to the public REST API (relative to the page, so it works under a stage prefix)
 * and to the WebSocket API named by window.BENCH_CONFIG.wsUrl (ui/config.js). Each page is a
 * view registered with the router; a new page is a new view-*.js module and one line here.
 */
import { $ } from "./dom.js";
import { refreshTimes } from "./format.js";
import { onSessionChange, session, signOut } from "./session.js";
import { currentView, registerView, route, showSection } from "./router.js";
import { clearToasts } from "./toasts.js";
import { forgetSchedules, putSchedule } from "./schedules.js";
import * as jobs from "./jobs.js";
import { startLive, stopLive } from "./live.js";
import { showSignedOut, wireAuth } from "./view-auth.js";
import { refreshSchedules, renderSchedules, runNow, schedulesView } from "./view-schedules.js";
import { onScheduleSaved, openScheduleDialog, wireScheduleDialog } from "./view-schedule-dialog.js";
import { historyView, refreshHistory, wireHistory } from "./view-history.js";
import { settingsView, wireSettings } from "./view-settings.js";
import { benchmarkView } from "./view-benchmark.js";
import { refreshTrends, trendsView } from "./view-trends.js";
import { alertsView } from "./view-alerts.js";
import { api } from "./api.js";

registerView("schedules", schedulesView);
registerView("benchmark", benchmarkView);
registerView("trends", trendsView);
registerView("history", historyView);
registerView("alerts", alertsView);
registerView("settings", settingsView);

function goLive() {
  startLive({ message: jobs.handleMessage, status: jobs.setConnection, poll: jobs.pollActive });
}

onSessionChange((signedIn, message) => {
  if (signedIn) {
    $("#account-email").textContent = session.email;
    goLive();
    if (!location.hash || location.hash === "#/auth") location.hash = "#/schedules";
    else route();
    return;
  }
  stopLive();
  jobs.reset();
  forgetSchedules();
  clearToasts();
  showSection("auth");
  showSignedOut(message);
});

// A job that ended changed its schedule (last run; after Run now, the next run) and History.
jobs.onJobEnded(() => {
  refreshSchedules().catch(() => {});
  if (currentView() === "history") refreshHistory().catch(() => {});
  if (currentView() === "trends") refreshTrends().catch(() => {});
});

onScheduleSaved((schedule, runAfter) => {
  putSchedule(schedule);
  if (currentView() === "schedules") renderSchedules();
  if (runAfter) runNow(schedule);
});

function wire() {
  wireAuth();
  wireScheduleDialog();
  wireHistory();
  wireSettings();
  jobs.wireWidget();
  // Logout ends the token on the server (every token of the user, and their sockets), not
  // only in this tab; the tab signs out whatever the server answered.
  $("#sign-out").addEventListener("click", () => api("POST", "api/auth/logout").catch(() => {}).finally(() => signOut()));
  $(".skip-link").addEventListener("click", (event) => {
    event.preventDefault(); // a hash of its own would leave the page's route
    $("#main").focus();
  });
  $("#new-schedule").addEventListener("click", () => openScheduleDialog(null));
  document.querySelectorAll("[data-close]").forEach((button) => {
    button.addEventListener("click", () => button.closest("dialog").close());
  });
  window.addEventListener("hashchange", route);
  setInterval(refreshTimes, 60000); // "in 3 hours" stays true while the page is open
}

wire();
if (session.token) {
  $("#account-email").textContent = session.email;
  goLive(); // a stale token is refused at the ticket, which signs out
}
route();
