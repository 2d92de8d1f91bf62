"""paligemma-eval: evaluation and safety auditing for PaliGemma and PaliGemma 2 checkpoints.

The repository keeps its folders harness/, tasks/, safety/ and reports/ at the top; installed,
they live under this one import name (paligemma_eval.harness, paligemma_eval.tasks, ...), so
nothing generic such as `safety` or `tasks` lands in site-packages.
"""
