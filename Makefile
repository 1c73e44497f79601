# layercollapse: every entry point a user or CI needs.
#   make reproduce   the paper's experiments at CPU scale (the main job)
#   make test        the test suite (release build: the numeric tests need it)
#   make bench       GEMM and model speed figures
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
APT_PACKAGES := libopenblas-dev libhdf5-dev zlib1g-dev pkg-config hdf5-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/$(CONFIG)

.PHONY: setup build test bench lint format clean reproduce smoke

# Installs the C libraries only when one is missing, so it is cheap to run every time.
setup:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing $$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: setup
	$(SWIFT) build -c $(CONFIG)

test: setup
	$(SWIFT) build -c $(CONFIG) --build-tests
	$(SWIFT) test -c $(CONFIG) --skip-build

bench: build
	$(BIN)/lc-bench

# The paper's five experiments at CPU scale: runs/reproduce -> results/ (under 2 hours).
reproduce: build
	LC=$(BIN)/layercollapse scripts/reproduce.sh full

# The same experiments, tiny, in minutes: runs/smoke -> results/smoke/.
smoke: build
	LC=$(BIN)/layercollapse scripts/reproduce.sh smoke

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Package.swift

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

clean:
	rm -rf .build results/smoke
