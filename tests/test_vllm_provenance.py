"""What results made with the vLLM backend say about it (no vLLM needed)."""

import json

import pytest

from paligemma_eval.harness import vllm_backend


def test_vllm_results_cite_the_measured_agreement(tmp_path, monkeypatch):
    measured = json.loads(vllm_backend.AGREEMENT.read_text())   # written by `make test-vllm`
    record = vllm_backend.agreement_record("vqav2_val")
    assert record["path"] == "vllm" and "image tokens only" in record["differs_from_paligemma"]
    assert record["agreement_with_transformers"] == {
        "task": measured["tasks"]["vqav2_val"], "all_tasks": measured["all_tasks"],
        "measured_on": measured["measured_on"]}
    assert vllm_backend.agreement_record("no_such_task")["agreement_with_transformers"]["task"] \
        is None
    monkeypatch.setattr(vllm_backend, "AGREEMENT", tmp_path / "absent.json")
    assert vllm_backend.agreement_record("vqav2_val")["agreement_with_transformers"] is None


def test_vllm_cpus_own_thread_warning_is_dropped_and_its_other_messages_kept(caplog):
    logger = vllm_backend.logging.getLogger("vllm.v1.worker.cpu_worker")
    vllm_backend.quiet_cpu_threads_warning()
    vllm_backend.quiet_cpu_threads_warning()     # a second model load adds no second filter
    assert logger.filters.count(vllm_backend._not_cpu_threads_warning) == 1
    with caplog.at_level("WARNING"):
        logger.warning("CPU backend doesn't allow to use `torch.set_num_threads` after the "
                       "thread binding, skip it.")
        logger.warning("libtcmalloc is not found in LD_PRELOAD.")
    assert [r.getMessage() for r in caplog.records] == ["libtcmalloc is not found in LD_PRELOAD."]


def test_vllm_refuses_exactly_the_prompts_big_vision_would_cut(tiny_model):
    """Every task cuts its prompts to its text length, but only a batch holding a prompt that
    outgrows it is refused: the same rule as the transformers backend's cut."""
    from PIL import Image

    from paligemma_eval.harness.errors import ModelError

    tokenizer = tiny_model.processor.tokenizer
    short, long = "answer en what colour is the square", "answer en " + "what colour is it " * 8
    limit = len(tiny_model.prompt_ids(short, None)[0]) + 1        # <bos> short \n fits exactly
    assert [tiny_model.prompt_ids(p, limit)[1] for p in (short, long)] == [False, True]
    assert vllm_backend.cut_prompts(tokenizer, [short, long, short], limit) == [long]
    assert vllm_backend.cut_prompts(tokenizer, [long], None) == []

    model = object.__new__(vllm_backend.VllmModel)    # its engine is not needed to prepare
    model.tokenizer = tokenizer
    image = Image.new("RGB", (8, 8))
    assert [r["prompt"] for r in model.prepare([[image]], [short], limit)] == [short]
    with pytest.raises(ModelError, match=r"1 prompt\(s\) of this batch outgrow the task's text "
                                         r"length \(\d+ tokens\)"):
        model.prepare([[image], [image]], [short, long], limit)
