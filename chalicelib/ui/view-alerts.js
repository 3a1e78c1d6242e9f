/* Alert rules (api/alerts): create, edit, test, delete; recent events with their delivery outcome. */

export const alertsView = {
  title: "Alerts",
  show() {},
};
