"""Built-in benchmark tasks, one module per benchmark family; importing registers them."""

from paligemma_eval.tasks import captioning, docvqa, mmvp, pope, refcoco, vqa  # noqa: F401
