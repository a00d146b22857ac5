"""The sections of RESULTS.md, one module per kind of input, which `pose_lab.report` (the entry point) puts
together: `runs` (training run folders, their failures, commands and budget), `variants` (the ablation table per
group of runs, beside the report's Table 1), `plot` (accuracy against latency), `benches` (bench.json: latency
columns, runtimes, the MediaPipe comparison, the bench machine), `levers` (one-change training runs),
`evaluations` (inference-time settings of `pose_lab.evaluate`), `exercise` (exercise_bench.json), `merge` (updating
an existing RESULTS.md) and `markdown` (headings and tables)."""
