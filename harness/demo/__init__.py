# One task per benchmark family of the demo (prompt, decode length and parser differ between
# families, hardly within), for the checks too slow to run on all of them: bench/fast_generate.py
# and tests/vllm. Beam search (captioning) is among them.
FAMILY_TASKS = ("vqav2_val", "okvqa_val", "textvqa_val", "docvqa_val", "pope_random", "mmvp",
                "refcoco_val_detect", "refcoco_val", "coco_cap_karpathy_val")
