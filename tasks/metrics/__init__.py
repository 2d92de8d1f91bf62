"""One small module per metric: predictions and references in, per-example scores out.

Beside a rule, its `explain_*` (Task.explain, for the sample browser) is built on the functions
the scorer calls, so the why it gives cannot disagree with the score."""

from collections.abc import Callable, Iterator
from typing import Any

# Task.explain (harness/registry.py): (parsed predictions, targets) -> one dict per example
Explain = Callable[[list[str], list[Any]], Iterator[dict[str, Any]]]
