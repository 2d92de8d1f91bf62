"""Fast vs plain generation on the CPU: agreement on every demo task, and the speed ratio.

    python bench/fast_generate.py [--limit 8] [--tasks all] [--skip-agreement] [--skip-speed]

1. agreement: one task per family (or --tasks all: every built-in task) on both tiny models, plain
   vs fast predictions through the runner (fixture data, --limit examples, batch 4). The fast
   path's decode step is captured by dynamo here with the "eager" backend (same graph, guards and
   buckets as inductor, no code generation: inductor would compile anew for every task's cache
   length, minutes each on two cores). Beam tasks run plain on both sides and are marked so.
2. speed, on vqav2_val (the fixture's examples, batch 8): plain; fast without compilation (static
   cache, buckets, one vision pass per image); fast as `run --generation fast` compiles it
   (`exact_backend`: dynamo's capture of eager's kernels here); fast with inductor (the first
   call, which compiles, timed apart). Each on the tiny models and on a larger random-weight
   PaliGemma 2 config (~35M parameters, decodes every token: random weights never emit EOS).
   Best of --repeats, alternated. Also the share of a batch's time spent decoding, resizing and
   processing images (the work the runner moves off the generating thread on an accelerator).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")
import datasets  # noqa: E402
import torch  # noqa: E402

from paligemma_eval.harness import data, registry  # noqa: E402
from paligemma_eval.harness.demo import FAMILY_TASKS  # noqa: E402
from paligemma_eval.harness.demo.fixtures import DATA_DIR  # noqa: E402
from paligemma_eval.harness.loading import load_model  # noqa: E402
from paligemma_eval.harness.models import (EMBEDDED, ModelInfo, PaliGemmaModel,  # noqa: E402
                                          load_processor)
from paligemma_eval.harness.runner import RunOptions, generate, load_predictions, prepare  # noqa

MODELS = ("tiny-paligemma", "tiny-paligemma2")


def predictions(model: Any, task: Any, limit: int | None, batch_size: int) -> dict[str, str]:
    prepared = prepare(task, DATA_DIR, limit)
    with tempfile.TemporaryDirectory() as out:
        options = RunOptions(out=Path(out), data_dir=DATA_DIR, limit=limit,
                             batch_size=batch_size, resamples=0)
        key = generate(model, prepared, options)["key"]
        return {i: r.get("prediction") for i, r in load_predictions(Path(out), task, key).items()}


def agreement(limit: int, names: list[str]) -> None:
    tasks = registry.resolve(names)
    for name in MODELS:
        plain, fast = load_model(name, device="cpu"), load_model(name, device="cpu")
        fast.use_generation("fast", largest_batch=4, compile_backend="eager")
        same = total = 0
        for task in tasks:
            expected = predictions(plain, task, limit, 4)
            got = predictions(fast, task, limit, 4)
            agree = sum(got.get(i) == p for i, p in expected.items())
            same, total = same + agree, total + len(expected)
            beams = " (beams: plain on both sides)" if task.num_beams > 1 else ""
            print(f"agreement {name} {task.name}: {agree}/{len(expected)}{beams}", flush=True)
        print(f"agreement {name}, all {len(tasks)} tasks: {same}/{total} "
              f"({same / max(total, 1):.1%})", flush=True)


def larger_model() -> PaliGemmaModel:
    """A random-weight PaliGemma 2 (Gemma 2 text with sliding window and soft-caps) ~35M
    parameters, with the tiny model's tokenizer and processor."""
    from transformers import AutoConfig, PaliGemmaForConditionalGeneration

    config = AutoConfig.from_pretrained(EMBEDDED["tiny-paligemma2"])
    text, vision = config.text_config, config.vision_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = 512, 2048, 6
    text.num_attention_heads, text.num_key_value_heads, text.head_dim = 8, 4, 64
    text.query_pre_attn_scalar = 64
    text.layer_types = ["sliding_attention", "full_attention"] * 3
    vision.hidden_size, vision.intermediate_size, vision.num_hidden_layers = 384, 1536, 6
    vision.num_attention_heads = 6
    vision.projection_dim = config.projection_dim = 512
    torch.manual_seed(0)
    model = PaliGemmaForConditionalGeneration._from_config(config, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None   # decode every token
    processor = load_processor(EMBEDDED["tiny-paligemma2"])
    n = sum(p.numel() for p in model.parameters())
    info = ModelInfo(id="random-35M", revision=None, fingerprint="random", family="paligemma2",
                     size=f"{n / 1e6:.0f}M", resolution=224, dtype="float32", kind="pt")
    return PaliGemmaModel(model, processor, info)


def timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def speed(label: str, build: Any, repeats: int, batch_size: int) -> None:
    (task,) = registry.resolve(["vqav2_val"])
    prepared = prepare(task, DATA_DIR, None)
    n = len(prepared.ids)
    sides = {"plain": build(), "fast, not compiled": build(), "fast, default (exact)": build(),
             "fast, inductor": build()}
    sides["fast, not compiled"].use_generation("fast", batch_size, compile_backend=None)
    sides["fast, default (exact)"].use_generation("fast", batch_size)
    sides["fast, inductor"].use_generation("fast", batch_size, compile_backend="inductor")
    answers, best = {}, {side: float("inf") for side in sides}
    first = timed(lambda: answers.update(
        {"fast, inductor": predictions(sides["fast, inductor"], task, None, batch_size)}))
    for side in sides:   # warm-up (and the answers compared)
        answers[side] = predictions(sides[side], task, None, batch_size)
    for _ in range(repeats):
        for side, model in sides.items():
            best[side] = min(best[side], timed(lambda: predictions(model, task, None,
                                                                    batch_size)))
    plain = best["plain"]
    for side in sides:
        agree = sum(answers[side].get(i) == p for i, p in answers["plain"].items())
        print(f"speed {label} batch {batch_size}: {side}: {n / best[side]:.2f} ex/s "
              f"(x{plain / best[side]:.2f} plain), agreement {agree}/{n}", flush=True)
    print(f"speed {label}: first inductor call (compiles) {first:.1f} s", flush=True)
    preprocessing_share(label, sides["plain"], prepared, batch_size, plain / n)


def preprocessing_share(label: str, model: Any, prepared: Any, batch_size: int,
                        per_example: float) -> None:
    """Seconds per example decoding, resizing and processing images vs the plain run's total."""
    task = prepared.task
    ids = prepared.ids

    def prepare_all() -> None:
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size]
            images = [data.resize(data.decode_image(
                prepared.rows[prepared.row_of[i]][task.image_column]), 224, task.resize)
                for i in batch]
            model.prepare(images, [prepared.prompts[i] for i in batch])

    seconds = min(timed(prepare_all) for _ in range(3)) / len(ids)
    print(f"preprocessing {label}: {seconds * 1e3:.1f} ms per example, {seconds / per_example:.0%}"
          f" of the plain run's time per example", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=8, help="examples per task (agreement)")
    parser.add_argument("--tasks", default=",".join(FAMILY_TASKS),
                        help="tasks or groups for the agreement (default: one per family; "
                             "`all` for every task)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-agreement", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    import transformers
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    if not args.skip_agreement:
        names = [n for n in registry.resolve(args.tasks.split(",")) if
                 not n.name.startswith("example")]
        agreement(args.limit, [t.name for t in names])
    if not args.skip_speed:
        for name in MODELS:
            speed(name, lambda: load_model(name, device="cpu"), args.repeats, 8)
        speed("random-35M PaliGemma 2", larger_model, args.repeats, 8)


if __name__ == "__main__":
    main()
