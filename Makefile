# OmitI2V harness. Two commands on a fresh machine: `make eval` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision pair installed before the package (override for another CUDA/CPU build).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

MODEL ?= tiny-wan2.1
ASM ?= scalar
SCHEDULE ?= paper
DATA ?= mini
JUDGE ?=
SCORER ?=
ARGS ?=

.PHONY: install test lint eval generate judge score report plan tables clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -n 2 --timeout 900 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check omiti2v runners tests benchmarks

EVAL_OVERRIDES = model=$(MODEL) asm=$(ASM) schedule=$(SCHEDULE) data=$(DATA) \
	$(if $(JUDGE),judge=$(JUDGE)) $(if $(SCORER),scorer=$(SCORER)) $(ARGS)

eval: install
	$(BIN)/python runners/eval.py $(EVAL_OVERRIDES)

generate judge score report: install
	$(BIN)/python runners/$@.py $(EVAL_OVERRIDES)

clean-venv:
	rm -rf $(VENV)
