"""Test helper: the inverse of harness/npz.py's mapping, so a transformers PaliGemma model can be
written as a big_vision checkpoint (.npz, optionally bfloat16-as-void and split into parts)."""

from pathlib import Path

import numpy as np
import torch


def big_vision_arrays(model) -> dict[str, np.ndarray]:
    # big_vision writes C-ordered arrays: the loader streams them one layer at a time.
    return {name: np.ascontiguousarray(value.numpy())
            for name, value in big_vision_tensors(model).items()}


def big_vision_shapes(model) -> dict[str, tuple[int, ...]]:
    """Every parameter's big_vision shape; works on a memory-less (meta) model of any size."""
    return {name: tuple(value.shape) for name, value in big_vision_tensors(model).items()}


def big_vision_tensors(model) -> dict[str, torch.Tensor]:
    config = model.config
    state = {k: v.detach().float() for k, v in model.state_dict().items()}
    v, t = config.vision_config, config.text_config
    width, layers = v.hidden_size, v.num_hidden_layers
    heads, head_dim = v.num_attention_heads, v.hidden_size // v.num_attention_heads
    vt = "model.vision_tower"
    enc = lambda i, name: state[f"{vt}.encoder.layers.{i}.{name}"]  # noqa: E731
    stack = lambda f, n: torch.stack([f(i) for i in range(n)])  # noqa: E731
    block = "img/Transformer/encoderblock"
    out = {
        "img/embedding/kernel": state[f"{vt}.embeddings.patch_embedding.weight"].permute(2, 3, 1,
                                                                                          0),
        "img/embedding/bias": state[f"{vt}.embeddings.patch_embedding.bias"],
        "img/pos_embedding": state[f"{vt}.embeddings.position_embedding.weight"][None],
        "img/Transformer/encoder_norm/scale": state[f"{vt}.post_layernorm.weight"],
        "img/Transformer/encoder_norm/bias": state[f"{vt}.post_layernorm.bias"],
        "img/head/kernel": state["model.multi_modal_projector.linear.weight"].T,
        "img/head/bias": state["model.multi_modal_projector.linear.bias"],
    }
    for jax, name in (("LayerNorm_0", "layer_norm1"), ("LayerNorm_1", "layer_norm2")):
        out[f"{block}/{jax}/scale"] = stack(lambda i: enc(i, f"{name}.weight"), layers)
        out[f"{block}/{jax}/bias"] = stack(lambda i: enc(i, f"{name}.bias"), layers)
    for jax, name in (("Dense_0", "fc1"), ("Dense_1", "fc2")):
        out[f"{block}/MlpBlock_0/{jax}/kernel"] = stack(lambda i: enc(i, f"mlp.{name}.weight").T,
                                                        layers)
        out[f"{block}/MlpBlock_0/{jax}/bias"] = stack(lambda i: enc(i, f"mlp.{name}.bias"), layers)
    attention = f"{block}/MultiHeadDotProductAttention_0"
    for jax, name in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        out[f"{attention}/{jax}/kernel"] = stack(
            lambda i: enc(i, f"self_attn.{name}.weight").T.reshape(width, heads, head_dim), layers)
        out[f"{attention}/{jax}/bias"] = stack(
            lambda i: enc(i, f"self_attn.{name}.bias").reshape(heads, head_dim), layers)
    out[f"{attention}/out/kernel"] = stack(
        lambda i: enc(i, "self_attn.out_proj.weight").T.reshape(heads, head_dim, width), layers)
    out[f"{attention}/out/bias"] = stack(lambda i: enc(i, "self_attn.out_proj.bias"), layers)

    lm = "model.language_model"
    layer = lambda i, name: state[f"{lm}.layers.{i}.{name}"]  # noqa: E731
    n, k, h, d = t.num_attention_heads, t.num_key_value_heads, t.head_dim, t.hidden_size
    n_layers = t.num_hidden_layers
    out["llm/embedder/input_embedding"] = state[f"{lm}.embed_tokens.weight"][
        :config.image_token_index]
    out["llm/final_norm/scale"] = state[f"{lm}.norm.weight"]
    out["llm/layers/attn/q_einsum/w"] = stack(
        lambda i: layer(i, "self_attn.q_proj.weight").reshape(n, h, d).permute(0, 2, 1), n_layers)
    out["llm/layers/attn/kv_einsum/w"] = stack(lambda i: torch.stack([
        layer(i, f"self_attn.{p}.weight").reshape(k, h, d).permute(0, 2, 1)
        for p in ("k_proj", "v_proj")]), n_layers)
    out["llm/layers/attn/attn_vec_einsum/w"] = stack(
        lambda i: layer(i, "self_attn.o_proj.weight").reshape(d, n, h).permute(1, 2, 0), n_layers)
    out["llm/layers/mlp/gating_einsum"] = stack(lambda i: torch.stack(
        [layer(i, "mlp.gate_proj.weight").T, layer(i, "mlp.up_proj.weight").T]), n_layers)
    out["llm/layers/mlp/linear"] = stack(lambda i: layer(i, "mlp.down_proj.weight").T, n_layers)
    out["llm/layers/pre_attention_norm/scale"] = stack(
        lambda i: layer(i, "input_layernorm.weight"), n_layers)
    if t.model_type == "gemma2":
        for jax, name in (("pre_ffw_norm", "pre_feedforward_layernorm"),
                          ("post_attention_norm", "post_attention_layernorm"),
                          ("post_ffw_norm", "post_feedforward_layernorm")):
            out[f"llm/layers/{jax}/scale"] = stack(lambda i: layer(i, f"{name}.weight"), n_layers)
    else:
        out["llm/layers/pre_ffw_norm/scale"] = stack(
            lambda i: layer(i, "post_attention_layernorm.weight"), n_layers)
    return out


def bf16_void(array: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits stored as 2-byte void, as big_vision's PaliGemma 2 files."""
    bits = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(torch.bfloat16)
    return bits.view(torch.uint16).numpy().view("V2")


def write_npz(model, path: Path, bfloat16: bool = False) -> Path:
    arrays = big_vision_arrays(model)
    if bfloat16:
        arrays = {k: bf16_void(v) for k, v in arrays.items()}
    np.savez(path, **{f"params/{k}": v for k, v in arrays.items()})
    return path


def split(path: Path, parts: int) -> list[Path]:
    data = path.read_bytes()
    size = -(-len(data) // parts)
    written = []
    for i in range(parts):
        part = path.with_name(f"{path.name}.part{i:02d}")
        part.write_bytes(data[i * size:(i + 1) * size])
        written.append(part)
    return written


def round_to_bf16(model) -> None:
    """Make every weight exactly representable in bfloat16 (so a bf16 file loses nothing)."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.to(torch.bfloat16).float())


def published_shapes(family: str, size: str, resolution: int) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of a published variant, from REFERENCE.md's configs (no weights)."""
    text = {("paligemma", "3B"): (2048, 18, 8, 1, 256, 16384),
            ("paligemma2", "3B"): (2304, 26, 8, 4, 256, 9216),
            ("paligemma2", "10B"): (3584, 42, 16, 8, 256, 14336),
            ("paligemma2", "28B"): (4608, 46, 32, 16, 128, 36864)}[(family, size)]
    d, layers, n, k, h, f = text
    w, vl, heads, mlp, tokens = 1152, 27, 16, 4304, (resolution // 14) ** 2
    block = "img/Transformer/encoderblock"
    attention = f"{block}/MultiHeadDotProductAttention_0"
    shapes = {"img/embedding/kernel": (14, 14, 3, w), "img/embedding/bias": (w,),
              "img/pos_embedding": (1, tokens, w), f"{block}/LayerNorm_0/scale": (vl, w),
              f"{block}/MlpBlock_0/Dense_0/kernel": (vl, w, mlp),
              f"{attention}/query/kernel": (vl, w, heads, w // heads),
              "img/head/kernel": (w, d), "llm/embedder/input_embedding": (257152, d),
              "llm/layers/attn/q_einsum/w": (layers, n, d, h),
              "llm/layers/attn/kv_einsum/w": (layers, 2, k, d, h),
              "llm/layers/mlp/gating_einsum": (layers, 2, d, f),
              "llm/layers/pre_attention_norm/scale": (layers, d)}
    if family == "paligemma2":
        shapes["llm/layers/post_attention_norm/scale"] = (layers, d)
    return shapes
