# pose_lab: `make help` lists the targets.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
LSP ?= $(or $(POSE_LAB_LSP_ROOT),../shared/datasets/lsp)
ARGS ?=
# A checkpoint to score; empty = the shipped one (README: Model card).
CKPT ?=

.PHONY: help setup train train-l1 evaluate demo sweep bench report keep test test-full clean peer-venv exercise-bench

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python  ## create .venv and install pose_lab (editable) with its test, ONNX and sweep extras
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test,sweep]'

train:  ## the shipped checkpoint's recipe: base model 4/3 wide, S/16 soft-argmax readout, 150 + 120 epochs (ARGS=...)
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pose_lab.train experiment=lsp192_sigma3_l1_150_wide_softargmax_s16 $(ARGS)

INIT ?= checkpoints/base_lsp192_adamw_cosine.pt
train-l1:  ## an earlier shipped recipe's step 2: the regression phase again with an L1 loss, from INIT
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pose_lab.train experiment=lsp192_regression_l1 \
		phase.init_from=$(INIT) $(ARGS)

evaluate:  ## score a checkpoint: make evaluate CKPT=path/to/best.ckpt
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pose_lab.evaluate ckpt=$(or $(CKPT),null) $(ARGS)

demo:  ## score the shipped checkpoint on the 1000 LSP test images and print its PCK table
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pose_lab.evaluate ckpt=$(or $(CKPT),null) data.split=standard $(ARGS)

test:  ## the default test run (no slow tests), < 10 min on 2 CPU cores; lists its 15 slowest tests
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pytest -m "not slow and not gpu" --durations=15

test-full:  ## every test, slow ones included
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pytest

clean:  ## remove run outputs (keeps .venv)
	rm -rf outputs multirun lightning_logs .pytest_cache

SWEEP ?= $(lastword $(sort $(wildcard outputs/train/multiruns/*)))
BENCH ?= $(lastword $(sort $(wildcard outputs/bench/runs/*/bench.json)))

sweep:  ## the §5.1 ablation: 10 variants x 3 seeds, both phases, split seed (ARGS='hydra/launcher=parallel')
	POSE_LAB_LSP_ROOT=$(LSP) $(BIN)/python -m pose_lab.train experiment=ablation $(ARGS)

bench:  ## params, GFLOPs, CPU/GPU latency of every variant -> outputs/bench/runs/DATE/bench.json
	$(BIN)/python -m pose_lab.bench $(ARGS)

report:  ## RESULTS.md + plot from the latest sweep and bench (or SWEEP=dir BENCH=path|null)
	$(BIN)/python -m pose_lab.report sweep=$(SWEEP) bench=$(or $(BENCH),null) $(ARGS)

keep:  ## keep result folders' records (metrics, configs, bench JSON) in results/evidence/: FOLDERS="outputs/..."
	$(BIN)/python -m pose_lab.evidence $(FOLDERS)

VIDEOS ?= $(or $(POSE_LAB_EXERCISE_VIDEOS),../shared/datasets/exercise_videos)

peer-venv:  ## .venv-peer with MediaPipe 0.10.14, the exercise benchmark's reference peer (not a pose_lab dependency)
	$(PYTHON) -m venv .venv-peer
	.venv-peer/bin/pip install mediapipe==0.10.14 "numpy<2"

exercise-bench:  ## pose_lab vs MediaPipe on the real exercise clips: counts and frames/s side by side
	$(BIN)/python -m pose_lab.exercise.bench videos=$(VIDEOS) $(ARGS)
