"""Checkpoints in Detoxify's own file format (its `config` + `state_dict` dictionary), built
locally from a BERT config and a vocabulary: no download. Used by the tests (a tiny model) and
by bench/safety_throughput.py (bert-base shapes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def write_checkpoint(directory: Path, classes: list[str], vocabulary: list[str],
                     **config: Any) -> tuple[Path, Path, Any]:
    """(checkpoint file, config+tokenizer directory, the model in eval mode)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    config_dir = directory / "bert"
    config_dir.mkdir(parents=True)
    (config_dir / "vocab.txt").write_text("\n".join(vocabulary) + "\n")
    bert = BertConfig(vocab_size=len(vocabulary), num_labels=len(classes), **config)
    bert.save_pretrained(config_dir)
    BertTokenizer(str(config_dir / "vocab.txt")).save_pretrained(config_dir)
    torch.manual_seed(0)
    model = BertForSequenceClassification(bert).eval()
    checkpoint = directory / "detoxify.ckpt"
    torch.save({"config": {"arch": {"args": {"model_type": str(config_dir),
                                             "model_name": "BertForSequenceClassification",
                                             "tokenizer_name": "BertTokenizer",
                                             "num_classes": len(classes)}},
                           "dataset": {"args": {"classes": classes}}},
                "state_dict": model.state_dict()}, checkpoint)
    return checkpoint, config_dir, model
