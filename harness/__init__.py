"""paligemma-eval: evaluation and safety auditing for PaliGemma and PaliGemma 2 checkpoints."""
