"""Built-in benchmark tasks, one module per benchmark family; importing registers them."""

from paligemma_eval.tasks import captioning, docvqa, mmvp, pope, refcoco, vqa  # noqa: F401
from paligemma_eval.tasks import (  # noqa: F401
    docci, grandstaff, mimic_cxr, pubchem, tables, text_spotting, vsr)
