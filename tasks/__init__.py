"""Built-in benchmark tasks, one module per benchmark family; importing registers them."""

from paligemma_eval.tasks import (ai2d, aokvqa, captioning, chartqa, docci, docvqa,  # noqa: F401
                                  gqa, grandstaff, mimic_cxr, mmvp, multilingual_captioning,
                                  nlvr2, ocrvqa, pope, pubchem, refcoco, rsvqa, scienceqa, tables,
                                  tallyqa, text_spotting, transfer_captioning, video, vqa, vsr)
