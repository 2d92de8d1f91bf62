"""Built-in benchmark tasks, one module per benchmark family; importing registers them."""

from tasks import captioning, docvqa, mmvp, pope, refcoco, vqa  # noqa: F401
