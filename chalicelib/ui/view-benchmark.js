/* On-demand benchmarks (POST api/benchmarks): models, prompt, runs, warm-up; live progress; per-model summary with a winner per metric. */

export const benchmarkView = {
  title: "Benchmark",
  show() {},
};
