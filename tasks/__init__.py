"""Built-in benchmark tasks, one module per benchmark family; importing registers them."""

from paligemma_eval.tasks import (captioning, docvqa, mmvp, nlvr2, pope, refcoco,  # noqa: F401
                                  video, vqa)
from paligemma_eval.tasks import multilingual_captioning, transfer_captioning  # noqa: F401
