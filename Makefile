# Two entry points: `make demo` and `make test`. Each builds the virtual environment it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/paligemma-eval
DEMO_OUT ?= out/demo
DATA := harness/demo/data

.PHONY: demo test bench fixtures tiny-models clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch only if absent; 2.13.0 is a CPU build on these machines (a bare `torch` is multi-GB CUDA).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.plugin: $(VENV)/.installed tests/plugin_example/pyproject.toml
	$(PY) -m pip install -q -e tests/plugin_example
	touch $@

# The real vae-oid.npz cannot be fetched here: the demo uses one with its layout and random weights.
$(DEMO_OUT)/vae-oid-fixture.npz: $(VENV)/.installed
	$(PY) -c "from pathlib import Path; from paligemma_eval.harness.demo.fixtures import write_seg_decoder; write_seg_decoder(Path('$@'))"

demo: $(VENV)/.installed $(DEMO_OUT)/vae-oid-fixture.npz
	$(CLI) run --model tiny-paligemma --tasks all --data-dir $(DATA) --seg-decoder $(DEMO_OUT)/vae-oid-fixture.npz --output $(DEMO_OUT)/tiny-paligemma
	$(CLI) run --model tiny-paligemma2 --tasks all --data-dir $(DATA) --seg-decoder $(DEMO_OUT)/vae-oid-fixture.npz --output $(DEMO_OUT)/tiny-paligemma2
	# Safety suite against the built-in Perspective-compatible server (deterministic, NOT Perspective).
	$(CLI) safety --model tiny-paligemma --data-dir $(DATA) --scorer local-server --qps 50 --output $(DEMO_OUT)/tiny-paligemma
	$(CLI) report $(DEMO_OUT)/tiny-paligemma $(DEMO_OUT)/tiny-paligemma2 --output $(DEMO_OUT)/report.html

test: $(VENV)/.installed $(VENV)/.plugin
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.installed
	$(PY) bench/runner_overhead.py
	$(PY) bench/metrics_speed.py
	$(PY) bench/data_parallel.py
	$(PY) bench/npz_memory.py
	$(PY) bench/seg_decoder_speed.py

fixtures: $(VENV)/.installed
	$(PY) -m paligemma_eval.harness.demo.fixtures

tiny-models: $(VENV)/.installed
	$(PY) -m paligemma_eval.harness.demo.train_tiny

clean:
	rm -rf out $(VENV)
