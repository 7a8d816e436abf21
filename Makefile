PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data/ohlcv/binance

.PHONY: install test test-all lint format demo bench bench-grid bench-paper-grid bench-quick clean

install:  ## create .venv; install the package with dev tools (pytest, ruff; the vol, tune, ray, tracking extras) and darts (bench)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'

test:  ## run the default test suite (no network, no slow tests)
	$(BIN)/pytest -q

test-all:  ## include slow tests (still no network)
	$(BIN)/pytest -q -m 'not live'

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo:  ## end to end on CPU: import (or fetch) candles, features, train, backtest, forecast
	SHARED_DATA=$(SHARED_DATA) PATH=$(CURDIR)/$(BIN):$$PATH bash scripts/demo.sh

bench:  ## every benchmark, results in bench/results/, table in bench/RESULTS.md
	$(BIN)/python -m bench.run

bench-grid:  ## the walk-forward grid sample, cold vs warm vs fast refits (26 min on 2 cores, measured) -> bench/results/grid.json
	$(BIN)/python -m bench.run --only grid

bench-paper-grid:  ## the paper's whole grid end to end, pooled vs the shipped per-series plan (2 cores: see README) -> bench/results/paper_grid.json
	$(BIN)/python -m bench.run --only paper_grid

bench-quick:  ## smoke mode of every benchmark (CI runs it)
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info

.PHONY: compare
compare:  ## our backtest over 3 seeds next to published figures -> reports/compare/ (UPDATE_DOCS=1: docs/comparison.md too)
	$(BIN)/python scripts/compare.py price $(if $(UPDATE_DOCS),--update-docs) $(COMPARE_ARGS)

.PHONY: gpu-check gpu-check-dry gpu-wheels
gpu-check:  ## on a CUDA machine: precision, CPU-vs-GPU training agreement, attention, throughput -> bench/results/gpu.json (docs/gpu.md)
	$(BIN)/python scripts/gpu_check.py $(GPU_CHECK_ARGS)

gpu-check-dry:  ## the same code paths on the CPU at tiny sizes (CI runs it)
	$(BIN)/python scripts/gpu_check.py --device cpu $(GPU_CHECK_ARGS)

gpu-wheels:  ## wheels for the bare GPU machine -> .gpu/ (git-ignored; docs/gpu.md)
	$(BIN)/python scripts/gpu_wheels.py

.PHONY: compare-vol
compare-vol:  ## every volatility model (neural over 3 seeds) vs HAR, with DM, SPA and the 90% MCS; RV from 1h, then 5m candles -> docs/volatility.md
	$(BIN)/python scripts/compare.py volatility $(COMPARE_ARGS)
	$(BIN)/python scripts/compare.py volatility --config configs/compare_vol_5m.yaml $(COMPARE_ARGS)

.PHONY: compare-prob
compare-prob:  ## quantile models vs rw_ewma, daily and hourly, calibration none/cqr/aci, VaR tests, MCS -> docs/probabilistic.md
	$(BIN)/python scripts/compare.py probabilistic $(COMPARE_ARGS)

.PHONY: compare-global
compare-global:  ## pooled vs per-series models (3 seeds), without and with the ten training-only pairs; daily price/quantile/volatility, hourly price -> docs/global.md (COMPARE_ARGS=--reuse re-renders)
	$(BIN)/python scripts/compare.py pooled $(COMPARE_ARGS)
