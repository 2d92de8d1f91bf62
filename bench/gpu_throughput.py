"""GPU throughput of a real-size PaliGemma 2 3B (random bf16 weights, no download).

    python bench/gpu_throughput.py [--budget 420] [--json FILE] [--tiny] [--tflops T --tbps B]
                                   [--compile-backend exact|inductor]

Builds the published PaliGemma 2 3B config at 224, 448 and 896 px (256 / 1,024 / 4,096 image
tokens) with random weights directly on the GPU, writes synthetic VQAv2-schema data (640x480 JPEG
images, the fixture questions) and prints, in order, as long as --budget seconds last:
1. runner (`run_task`: data, resize, processor, generation, prediction file, scoring) vs a bare
   processor + `generate` loop on the same examples, batch 8 at 224 px: ratio (target <= 1.03);
2. per resolution, at batch 1, 8 and 64: the runner's examples/s with the plain path and with the
   fast path (`--generation fast`: static cache, compiled decode step with CUDA graphs, shape
   buckets), each as a fraction of the hardware limit, peak GPU memory, and the fast path's
   greedy agreement with the plain path's predictions (the fast path's first call, which
   compiles, is a warm-up and is not timed);
3. the largest batch that fits per resolution (one batch, doubling from 128 up to 1024), plain
   and fast, with the same figures;
4. SDPA vs eager attention in the vision tower (Gemma 2 has no SDPA path; bare loop, 448 px,
   batch 8);
5. the vLLM backend on the same inputs, when vllm imports.
The limit: prefill FLOPs (text and vision matmuls and attention, from the model's shapes) at the
GPU's nominal dense bf16 rate, plus, per decoded token, reading the weights once per batch and
every example's KV cache, at its nominal memory bandwidth (figures for known GPUs in NOMINAL,
else --tflops / --tbps). Random weights decode every one of vqav2_val's 32 new tokens (they never
emit EOS), so these are worst-case decode lengths; real answers stop after a few tokens. --tiny
runs the same steps with the embedded tiny config on the CPU at 224 px (a check that the script
works, not a measurement).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # one line per figure, no progress bars
import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.append(str(Path(__file__).resolve().parent.parent))  # for tests.npz_writer
from tests.npz_writer import published_shapes  # noqa: E402

from bare_loop import bare_loop  # noqa: E402
from paligemma_eval.harness import registry  # noqa: E402
from paligemma_eval.harness.demo import fixtures  # noqa: E402
from paligemma_eval.harness.models import (EMBEDDED, ModelInfo, PaliGemmaModel,  # noqa: E402
                                          load_processor)
from paligemma_eval.harness.npz import infer_variant, published_config  # noqa: E402
from paligemma_eval.harness.runner import (RunOptions, load_predictions, prepare,  # noqa: E402
                                           run_task)

RESOLUTIONS = (224, 448, 896)
BATCHES = (1, 8, 64)
# dense bf16 TFLOP/s and memory TB/s, from the vendors' data sheets (SXM parts)
NOMINAL = {"H200": (989.0, 4.8), "H100": (989.0, 3.35), "A100": (312.0, 2.0),
           "L40S": (362.0, 0.864), "L4": (121.0, 0.3)}
PATHS = ("plain", "fast")
GENERATORS: dict[tuple[int, int], Any] = {}
COMPILE_BACKEND = ["exact"]   # --compile-backend (fast_generate.EXACT by default)
FIGURES: dict[str, Any] = {}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def report(key: str, value: Any, line: str) -> None:
    FIGURES[key] = value
    print(line, flush=True)


def build(resolution: int, tiny: bool, device: str, attention: str | None = None) -> PaliGemmaModel:
    """Random-weight model of the published config (or the tiny one) and a processor for it."""
    from transformers import AutoConfig, PaliGemmaForConditionalGeneration

    processor = load_processor(EMBEDDED["tiny-paligemma2"])
    if tiny:
        config = AutoConfig.from_pretrained(EMBEDDED["tiny-paligemma2"])
        config.vision_config.image_size = resolution
    else:
        config = published_config(infer_variant(published_shapes("paligemma2", "3B", resolution)))
    tokens = (resolution // 14) ** 2
    config.text_config.num_image_tokens = tokens
    # The tiny tokenizer stands in for Gemma's (ids beyond it decode to nothing): only the image
    # token id has to agree.
    config.image_token_index = processor.tokenizer.convert_tokens_to_ids("<image>")
    processor.image_processor.size = {"height": resolution, "width": resolution}
    processor.image_seq_length = processor.image_processor.image_seq_length = tokens
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    with torch.device(device):
        model = PaliGemmaForConditionalGeneration._from_config(
            config, dtype=dtype, attn_implementation=attention).eval()
    model.generation_config.eos_token_id = None  # decode every token, whatever the weights
    info = ModelInfo(id=f"random-{'tiny' if tiny else '3B'}", revision=None, fingerprint="random",
                     family="paligemma2", size="tiny" if tiny else "3B", resolution=resolution,
                     dtype=str(dtype).removeprefix("torch."), kind="pt")
    return PaliGemmaModel(model, processor, info)


def write_data(directory: Path, rows: int) -> Path:
    """VQAv2-schema parquet: the fixture questions over 640x480 JPEG photo-like noise.

    Written with pyarrow alone: an in-memory `datasets.Dataset` is fingerprinted by pickling its
    table, which fails on some Python 3.12 / pyarrow builds (MonthDayNano)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fixtures.ROWS = rows
    table = fixtures.vqav2(random.Random(0))
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
    for row in table:
        pixels = np.clip(gradient + rng.normal(0, 40, (480, 640, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        row["image"] = {"bytes": buffer.getvalue(), "path": None}
    path = directory / "lmms-lab/VQAv2/default/validation.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(table), path)
    return directory


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(work: Callable[[], Any]) -> float:
    synchronize()
    started = time.perf_counter()
    work()
    synchronize()
    return time.perf_counter() - started


def runner(model: PaliGemmaModel, task: Any, data_dir: Path, limit: int, batch_size: int,
           path: str = "plain") -> dict[str, str]:
    """One run_task with the given generation path; its predictions. One fast generator per
    (model, batch size) for the whole bench, so its compiled buckets and static caches (the
    CUDA graphs' fixed addresses) carry over from the warm-up."""
    if path == "fast":
        key = (id(model), batch_size)
        if key not in GENERATORS:
            model.use_generation("fast", largest_batch=batch_size,
                                 compile_backend=COMPILE_BACKEND[0])
            GENERATORS[key] = model.fast
        model.fast = GENERATORS[key]
    try:
        with tempfile.TemporaryDirectory() as out:
            result = run_task(model, task, RunOptions(out=Path(out), data_dir=data_dir,
                                                      limit=limit, batch_size=batch_size,
                                                      resamples=0))
            records = load_predictions(Path(out), task, result["throughput"]["key"])
    finally:
        model.fast = None
    return {i: r.get("prediction") for i, r in records.items()}


def limit_examples_per_s(model: PaliGemmaModel, batch: int, prompt_tokens: int, new_tokens: int,
                         tflops: float, tbps: float) -> float:
    """The hardware limit for this work (module docstring), from the model's own shapes."""
    inner = model.model.model
    text, vision = model.model.config.text_config, model.model.config.vision_config
    text_params = sum(p.numel() for p in inner.language_model.parameters())
    embedding = inner.language_model.embed_tokens.weight.numel()   # also the (tied) LM head
    vision_params = sum(p.numel() for p in [*inner.vision_tower.parameters(),
                                            *inner.multi_modal_projector.parameters()])
    image_tokens = (vision.image_size // vision.patch_size) ** 2
    attention = 4 * text.num_hidden_layers * prompt_tokens ** 2 * text.num_attention_heads * \
        text.head_dim + 4 * vision.num_hidden_layers * image_tokens ** 2 * vision.hidden_size
    # layers over every prompt token, the LM head over the last one, the vision tower per patch
    prefill = 2 * (text_params - embedding) * prompt_tokens + 2 * embedding + \
        2 * vision_params * image_tokens + attention
    element = model.model.dtype.itemsize
    kv_per_token = text.num_hidden_layers * 2 * text.num_key_value_heads * text.head_dim * element
    context = prompt_tokens + new_tokens / 2   # the average over the decode steps
    # a decode step reads the text weights (layers + LM head) once and each example's KV cache
    seconds = batch * prefill / (tflops * 1e12) + \
        new_tokens * (text_params * element + batch * context * kv_per_token) / (tbps * 1e12)
    return batch / seconds


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def ratio_section(model: PaliGemmaModel, task: Any, data_dir: Path, n: int) -> None:
    prepared = prepare(task, data_dir, n)
    ids = prepared.ids
    runner(model, task, data_dir, n, 8)  # warm-up: first-call costs belong to neither side
    bare, ours = [], []
    for _ in range(2):  # alternated, so that drift hits both sides alike
        bare.append(timed(lambda: bare_loop(model, prepared, ids, 8)))
        ours.append(timed(lambda: runner(model, task, data_dir, n, 8)))
    report("runner_over_bare_224_b8", min(ours) / min(bare),
           f"224 px batch 8, {n} examples: bare {n / min(bare):.2f} ex/s, runner "
           f"{n / min(ours):.2f} ex/s, runner/bare time {min(ours) / min(bare):.3f} "
           f"(target <= 1.03)")


def prompt_length(model: PaliGemmaModel, prepared: Any) -> int:
    """Image tokens + the longest text prompt (with <bos> and the newline) among the examples."""
    tokenizer = model.processor.tokenizer
    text = max(len(tokenizer(prepared.prompts[i])["input_ids"]) for i in prepared.prompts)
    return model.processor.image_seq_length + text + 1


def compare_paths(label: str, key: str, model: PaliGemmaModel, task: Any, data_dir: Path,
                  n: int, batch_size: int, limit: float) -> None:
    """plain and fast on the same n examples: examples/s, fraction of the limit, peak memory,
    agreement."""
    figures, answers = {}, {}
    for path in PATHS:
        try:
            if path == "fast":   # warm-up: the first call compiles this bucket
                runner(model, task, data_dir, batch_size, batch_size, path)
            reset_peak()
            started = time.perf_counter()
            answers[path] = runner(model, task, data_dir, n, batch_size, path)
            synchronize()
        except Exception as error:
            if path == "plain" or isinstance(error, torch.cuda.OutOfMemoryError):
                raise
            # a fast path that fails (a compiler on another torch) must not cost the plain figure
            figures[path] = {"failed": f"{type(error).__name__}: {first_line(error)}"}
            continue
        rate = n / (time.perf_counter() - started)
        figures[path] = {"examples_per_s": rate, "of_limit": rate / limit, "peak_gib": peak_gib()}
    plain, fast = figures["plain"], figures["fast"]
    line = f"{label}: limit {limit:7.1f} ex/s | plain {plain['examples_per_s']:7.2f} ex/s " \
           f"({plain['of_limit']:5.1%}), {plain['peak_gib']:5.1f} GiB | fast "
    if "failed" in fast:
        figures.update(limit_examples_per_s=limit, agreement=None)
        report(key, figures, line + f"failed: {fast['failed']}")
        return
    same = sum(answers["fast"].get(i) == p for i, p in answers["plain"].items())
    figures.update(limit_examples_per_s=limit, agreement=same / max(len(answers["plain"]), 1))
    report(key, figures, line + f"{fast['examples_per_s']:7.2f} ex/s ({fast['of_limit']:5.1%}), "
           f"{fast['peak_gib']:5.1f} GiB | agreement {same}/{len(answers['plain'])}")


def rate_section(model: PaliGemmaModel, task: Any, data_dir: Path, resolution: int,
                 budget: Budget, nominal: tuple[float, float]) -> None:
    prepared = prepare(task, data_dir, 2 * max(BATCHES))
    prompt = prompt_length(model, prepared)
    for batch_size in BATCHES:
        if budget.left() < 30:
            print(f"{resolution} px batch {batch_size}: skipped (time budget)", flush=True)
            continue
        n = max(16, 2 * batch_size)
        limit = limit_examples_per_s(model, batch_size, prompt, task.max_new_tokens, *nominal)
        try:
            compare_paths(f"{resolution} px batch {batch_size:4d}", f"rate_{resolution}_b"
                          f"{batch_size}", model, task, data_dir, n, batch_size, limit)
        except torch.cuda.OutOfMemoryError:
            print(f"{resolution} px batch {batch_size}: out of GPU memory", flush=True)
            reset_peak()


def largest_batch(model: PaliGemmaModel, task: Any, data_dir: Path, resolution: int,
                  budget: Budget, cap: int, nominal: tuple[float, float]) -> None:
    """The largest batch (doubling from 128) for which one plain batch fits; then plain vs fast
    on two batches of it."""
    prepared = prepare(task, data_dir, cap)
    fits, batch_size = None, min(128, cap)
    while batch_size <= cap and budget.left() > 60:
        reset_peak()
        try:
            bare_loop(model, prepared, prepared.ids[:batch_size], batch_size)
        except torch.cuda.OutOfMemoryError:
            reset_peak()
            break
        fits = batch_size
        batch_size *= 2
    if fits is None:
        print(f"{resolution} px: batch {min(128, cap)} does not fit (or no time left)", flush=True)
        return
    more = " (cap)" if batch_size > cap else ""
    limit = limit_examples_per_s(model, fits, prompt_length(model, prepared),
                                 task.max_new_tokens, *nominal)
    try:
        compare_paths(f"{resolution} px largest batch {fits}{more}",
                      f"largest_batch_{resolution}", model, task, data_dir, min(2 * fits, cap),
                      fits, limit)
        FIGURES[f"largest_batch_{resolution}"]["batch"] = fits
    except torch.cuda.OutOfMemoryError:
        print(f"{resolution} px batch {fits}: the fast path's static cache does not fit",
              flush=True)
        reset_peak()


def attention_section(tiny: bool, device: str, task: Any, data_dir: Path) -> None:
    """transformers' default for PaliGemma 2 is SDPA in the SigLIP tower and eager attention in
    Gemma 2 (it has no SDPA path: SDPA cannot apply Gemma 2's logit soft-capping)."""
    prepared = prepare(task, data_dir, 32)
    rates = {}
    for label, attention in (("sdpa", None), ("eager", "eager")):
        model = build(448, tiny, device, attention)
        bare_loop(model, prepared, prepared.ids[:8], 8)  # warm-up
        rates[label] = 32 / timed(lambda: bare_loop(model, prepared, prepared.ids, 8))
        del model
        reset_peak()
    report("attention_448_b8", rates, f"448 px batch 8, bare loop: vision SDPA (default; Gemma 2 "
           f"text stays eager) {rates['sdpa']:.2f} ex/s, all eager {rates['eager']:.2f} ex/s "
           f"({rates['sdpa'] / rates['eager']:.2f}x)")


def vllm_section() -> None:
    try:
        import vllm  # noqa: F401
    except Exception as error:  # not installed, or no build for this CUDA
        print(f"vllm: not importable here ({type(error).__name__}); skipped", flush=True)
        return
    print("vllm imports, but the random-weight model has no checkpoint directory for it to load: "
          "run `paligemma-eval run --backend vllm` on a real checkpoint", flush=True)


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else ""


def section(name: str, budget: Budget, need: float, work: Callable[[], Any]) -> None:
    if budget.left() < need:
        print(f"{name}: skipped (time budget: {budget.left():.0f} s left, needs ~{need:.0f})",
              flush=True)
        return
    try:
        work()
    except Exception as error:  # one failed measurement must not cost the others
        print(f"{name}: failed: {type(error).__name__}: {first_line(error)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=420.0, help="seconds (default 420)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--tiny", action="store_true", help="tiny config on the CPU: a check")
    parser.add_argument("--tflops", type=float, help="the GPU's dense bf16 TFLOP/s (default: "
                                                     "NOMINAL by its name)")
    parser.add_argument("--tbps", type=float, help="its memory bandwidth, TB/s")
    parser.add_argument("--compile-backend", default="exact",
                        help="the fast path's decode-step backend: exact (default: CUDA graphs "
                             "of eager's kernels, the plain path's answers bit for bit) or "
                             "inductor (its own kernels: faster per step, answers can differ "
                             "in bfloat16)")
    args = parser.parse_args()
    COMPILE_BACKEND[0] = args.compile_backend
    budget = Budget(args.budget)
    device = "cpu" if args.tiny else "cuda"
    if device == "cuda":
        if not torch.cuda.is_available():
            sys.exit("no CUDA device here: run with --tiny for a CPU check of the script")
        name = torch.cuda.get_device_name()
        report("gpu", name, f"GPU: {name}, torch {torch.__version__}")
    gpu = torch.cuda.get_device_name() if device == "cuda" else ""
    known = next((figures for key, figures in NOMINAL.items() if key in gpu),
                 NOMINAL["H200"] if args.tiny else (None, None))
    nominal = (args.tflops or known[0], args.tbps or known[1])
    if None in nominal:
        sys.exit(f"{gpu}: unknown nominal figures; give them with --tflops and --tbps")
    report("nominal", {"tflops": nominal[0], "tbps": nominal[1]},
           f"limit from {nominal[0]:.0f} TFLOP/s (dense bf16) and {nominal[1]} TB/s"
           + (" (H200 figures: --tiny is a check of the script)" if args.tiny else ""))
    report("compile_backend", args.compile_backend,
           f"fast path's decode step compiled with: {args.compile_backend}")
    import transformers
    FIGURES["transformers"] = transformers.__version__
    datasets.disable_progress_bars()
    cap = 16 if args.tiny else 1024
    data_dir = write_data(Path(tempfile.mkdtemp()), max(cap, 2 * max(BATCHES)))
    task = registry.resolve(["vqav2_val"])[0]
    for resolution in RESOLUTIONS[:1] if args.tiny else RESOLUTIONS:
        if budget.left() < 30:
            print(f"{resolution} px: skipped (time budget)", flush=True)
            continue
        started = time.perf_counter()
        model = build(resolution, args.tiny, device)
        print(f"{resolution} px: model built in {time.perf_counter() - started:.1f} s "
              f"({sum(p.numel() for p in model.model.parameters()) / 1e9:.2f} B parameters)",
              flush=True)
        if resolution == 224:
            section("ratio", budget, 60, lambda: ratio_section(model, task, data_dir, 64))
        section(f"rates {resolution}", budget, 30,
                lambda: rate_section(model, task, data_dir, resolution, budget, nominal))
        section(f"largest batch {resolution}", budget, 40,
                lambda: largest_batch(model, task, data_dir, resolution, budget, cap, nominal))
        del model
        GENERATORS.clear()
        reset_peak()
    section("attention", budget, 60, lambda: attention_section(args.tiny, device, task, data_dir))
    vllm_section()
    if args.json:
        args.json.write_text(json.dumps(FIGURES, indent=1))


if __name__ == "__main__":
    main()
