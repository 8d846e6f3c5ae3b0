# OmitI2V harness. On a fresh machine: `make eval` (smoke run) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision pair installed before the package (override for another CUDA or a CPU build).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

# Hydra choices; empty MODEL means the smoke run (conf/smoke.yaml: mini set, tiny offline judge and scorers), and
# so does a MODEL ending in -tiny (the runners' own rule): `make eval MODEL=framepack-tiny` is a dry run of
# FramePack's code.
MODEL ?=
ASM ?=
SCHEDULE ?=
GUIDANCE ?=
DATA ?=
JUDGE ?=
SCORER ?=
ARGS ?=
PYTEST_ARGS ?=
TABLE ?= main
DRY_RUN ?=

CONFIG := $(if $(MODEL),,--config-name smoke)
# Where runs, tables and plots live (the runners read the same variable through conf/config.yaml).
RESULTS := $(or $(OMITI2V_RESULTS),results)
OVERRIDES = $(CONFIG) $(if $(MODEL),model=$(MODEL)) $(if $(ASM),asm=$(ASM)) $(if $(SCHEDULE),schedule=$(SCHEDULE)) $(if $(GUIDANCE),guidance=$(GUIDANCE)) \
	$(if $(DATA),data=$(DATA)) $(if $(JUDGE),judge=$(JUDGE)) $(if $(SCORER),scorer=$(SCORER)) $(ARGS)

.PHONY: install test lint eval generate judge score summary plan tables reproduce clean-venv

install: $(STAMP)

# Redone only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: install
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --timeout 900 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check omiti2v runners tests benchmarks benchmark_data

# The whole chain: generate -> judge -> score -> summary.
eval: install
	$(BIN)/python runners/eval.py $(OVERRIDES)

generate judge score summary: install
	$(BIN)/python runners/$@.py $(OVERRIDES)

# Seconds per step / video / config and peak memory of real-size random-weight models on this GPU.
# MODEL and ASM take comma lists: `make plan MODEL=wan2.1,framepack ASM=none,scalar`.
plan: install
	$(BIN)/python runners/plan.py -m $(OVERRIDES)

tables: install
	$(BIN)/omiti2v tables --runs $(RESULTS)/runs --out $(RESULTS)/tables
	$(BIN)/omiti2v plots --runs $(RESULTS)/runs --out $(RESULTS)/plots

# Every run one paper table needs (conf/experiment/$(TABLE).yaml), resumed, then the table beside the paper's
# numbers. DRY_RUN=1 prints the runs and their GPU-hours only (DRY_RUN=0 runs them); ARGS go to every run
# (hydra/launcher=slurm).
reproduce: install
	$(BIN)/python runners/reproduce.py --table $(TABLE) $(if $(filter-out 0 no false,$(DRY_RUN)),--dry-run)$(if $(MODEL), --model $(MODEL)) $(ARGS)

clean-venv:
	rm -rf $(VENV)
