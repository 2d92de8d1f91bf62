"""PaliGemma's segmentation-token decoder: big_vision's VQ-VAE decoder from `vae-oid.npz`.

Sixteen <seg> indices -> codebook vectors -> 4x4 grid -> 1x1 conv + ReLU -> two residual blocks
-> four stride-2 transposed convolutions (4 -> 64 px) each + ReLU -> 1x1 conv to one channel of
mask logits (64x64). The file is a PyTorch state dict saved as npz, so weights load as they are.

Get the file from the big_vision PaliGemma demo (it is published beside the model as
`vae-oid.npz`) and pass it with `--seg-decoder PATH` or the PALIGEMMA_SEG_DECODER variable.
"""

from __future__ import annotations

import os
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from paligemma_eval.harness.errors import first_few

ENV_VARIABLE = "PALIGEMMA_SEG_DECODER"
WHERE = ("the published file vae-oid.npz from the big_vision PaliGemma demo (see README, "
         "'Segmentation decoder'); pass --seg-decoder PATH or set PALIGEMMA_SEG_DECODER")


class SegDecoderMissing(FileNotFoundError):
    pass


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SegDecoder(nn.Module):
    """Index names match the npz keys: decoder.0, decoder.2.net.{0,2,4}, ..., decoder.12."""

    def __init__(self, codebook: int = 128, width: int = 512) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(codebook, width), requires_grad=False)
        up = lambda i, o: nn.ConvTranspose2d(i, o, 4, stride=2, padding=1)  # noqa: E731
        self.decoder = nn.Sequential(
            nn.Conv2d(width, 128, 1), nn.ReLU(), _Residual(128), _Residual(128),
            up(128, 128), nn.ReLU(), up(128, 64), nn.ReLU(), up(64, 32), nn.ReLU(),
            up(32, 16), nn.ReLU(), nn.Conv2d(16, 1, 1))

    @torch.inference_mode()
    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """[batch, 16] codebook indices -> [batch, 64, 64] mask logits."""
        vectors = self.embedding[indices.long()]                   # [B, 16, D]
        grid = vectors.reshape(-1, 4, 4, vectors.shape[-1]).permute(0, 3, 1, 2)
        return self.decoder(grid)[:, 0]

    @classmethod
    def from_npz(cls, path: str | Path, device: str | torch.device = "cpu") -> "SegDecoder":
        """The decoder of a vae-oid.npz; any file that is not one is a one-line ValueError."""
        try:
            arrays = np.load(path)   # arrays only: a pickle is refused, never run
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            # numpy calls any other file a pickle, and suggests loading it unsafely
            reason = "another kind of file" if "pickle" in str(error) else \
                str(error).splitlines()[0]
            raise ValueError(f"{path}: not a readable .npz file ({reason})") from None
        if not isinstance(arrays, np.lib.npyio.NpzFile) or \
                "_vq_vae._embedding" not in arrays.files:
            raise ValueError(f"{path}: not a PaliGemma VQ-VAE file (no '_vq_vae._embedding')")
        embedding = arrays["_vq_vae._embedding"]
        if embedding.ndim != 2:
            raise ValueError(f"{path}: '_vq_vae._embedding' has shape {embedding.shape}, "
                             f"expected (codebook, width)")
        model = cls(*embedding.shape)
        state = {"embedding": embedding,
                 **{k: arrays[k] for k in arrays.files if k.startswith("decoder.")}}
        missing = set(model.state_dict()) - set(state)
        if missing:
            raise ValueError(f"{path}: missing decoder weights {sorted(missing)[:4]}...")
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        wrong = [f"{k} {state[k].shape} (expected {shape})" for k, shape in expected.items()
                 if tuple(state[k].shape) != shape]
        if wrong:
            raise ValueError(f"{path}: weights of the wrong shape: {first_few(wrong, 2)}")
        model.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32))
                               for k, v in state.items()})
        return model.to(device).eval()


def resolve_path(path: str | None) -> Path:
    chosen = path or os.environ.get(ENV_VARIABLE)
    if not chosen:
        raise SegDecoderMissing(f"segmentation tasks need {WHERE}")
    if not Path(chosen).is_file():
        raise SegDecoderMissing(f"segmentation decoder {chosen}: no such file; need {WHERE}")
    return Path(chosen)


@lru_cache(maxsize=4)
def _loaded(path: str, device: str) -> SegDecoder:
    return SegDecoder.from_npz(path, device)


def load() -> SegDecoder:
    """The configured decoder, on the GPU when there is one (loaded once)."""
    return _loaded(str(resolve_path(None)), "cuda" if torch.cuda.is_available() else "cpu")


def decode_masks(codes: list[tuple[int, ...]]) -> np.ndarray:
    """64x64 mask logits for each code sequence, with the configured decoder; batched on the GPU
    when there is one."""
    if not codes:
        return np.zeros((0, 64, 64), dtype=np.float32)
    decoder = load()
    device = decoder.embedding.device
    logits = [decoder(torch.tensor(codes[s:s + 256], device=device)).float().cpu().numpy()
              for s in range(0, len(codes), 256)]
    return np.concatenate(logits)
