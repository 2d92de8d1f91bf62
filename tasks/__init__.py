"""Built-in benchmark tasks, one module per benchmark family; importing registers them."""

from paligemma_eval.tasks import (ai2d, aokvqa, captioning, chartqa, docvqa, gqa,  # noqa: F401
                                  mmvp, nlvr2, ocrvqa, pope, refcoco, rsvqa, scienceqa, tallyqa,
                                  video, vqa)
from paligemma_eval.tasks import multilingual_captioning, transfer_captioning  # noqa: F401
