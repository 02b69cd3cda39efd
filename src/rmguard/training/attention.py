"""Exact attention over packed rows, with no T×T mask: each block of queries sees only its own keys.

A packed row (:mod:`rmguard.training.packing`) holds segments ``[prompt | response_1 | … | response_k]`` back to
back. Who may attend to whom splits into *blocks*, each a run of queries with the key spans it may see:

    [prompt | response_1]   its own tokens, causally: a plain causal block (SDPA's is_causal kernel)
    response_j, j ≥ 2       the prompt's tokens, then its own, causally

Inside a block the rule is one comparison, key position ≤ query position (and, on a sliding-window
layer, query position − key position < window), because each response's positions continue from its
prompt's end. :class:`PackedAttention` lists the blocks of one batch.

``rmguard_packed_sdpa`` and ``rmguard_packed_eager`` are transformers attention implementations,
registered here, that call the model's own SDPA or eager function once per block. Soft-capping,
scaling, GQA and dropout therefore stay the model's own, and attention costs Σ q·k over the blocks
(what each response costs alone) instead of T² for the row. Calls without a layout (padded batches) go
straight to the model's own function, so a model switched to these names computes everything else as
before.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

from rmguard.errors import ConfigError

PACKED_SDPA = "rmguard_packed_sdpa"
PACKED_EAGER = "rmguard_packed_eager"
# Layer kinds whose visibility follows from the blocks and the positions alone.
EXACT_LAYER_TYPES = ("full_attention", "sliding_attention")
# A 4-D tensor is taken by transformers as an already prepared mask and passed through untouched; the
# packed implementations read the blocks instead and never look at it.
_MASK_IN_LAYOUT = torch.ones(1, 1, 1, 1, dtype=torch.bool)


@dataclass(frozen=True)
class AttentionBlock:
    """Queries ``[start, end)`` of the row and the key spans they may see, in position order."""

    queries: tuple[int, int]
    keys: tuple[tuple[int, int], ...]

    @property
    def plain_causal(self) -> bool:
        return self.keys == (self.queries,)


@dataclass
class PackedAttention:
    """The attention layout of one packed row: ``blocks`` cover the row in order; ``position_ids`` [T]."""

    blocks: list[AttentionBlock]
    position_ids: Tensor
    _masks: dict[tuple[Any, ...], Tensor | None] = field(default_factory=dict, repr=False, compare=False)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> PackedAttention:
        return PackedAttention(self.blocks, self.position_ids.to(device, non_blocking=non_blocking))

    def block_mask(self, index: int, window: int | None, additive_dtype: torch.dtype | None) -> Tensor | None:
        """[1, 1, q, k] mask of block ``index``: boolean, or additive in ``additive_dtype`` (eager). None for a
        plain causal block under SDPA, which then takes its is_causal kernel. Built once per batch."""
        key = (index, window, additive_dtype)
        if key not in self._masks:
            block = self.blocks[index]
            query_pos = self.position_ids[block.queries[0] : block.queries[1]]
            if additive_dtype is None and block.plain_causal and (window is None or len(query_pos) <= window):
                self._masks[key] = None
            else:
                key_pos = torch.cat([self.position_ids[start:end] for start, end in block.keys])
                visible = key_pos[None, :] <= query_pos[:, None]
                if window is not None:
                    visible &= (query_pos[:, None] - key_pos[None, :]) < window
                mask = visible[None, None]
                if additive_dtype is not None:
                    mask = torch.zeros(mask.shape, dtype=additive_dtype, device=mask.device).masked_fill_(
                        ~mask, torch.finfo(additive_dtype).min
                    )
                self._masks[key] = mask
        return self._masks[key]


def _gather(states: Tensor, spans: tuple[tuple[int, int], ...]) -> Tensor:
    if len(spans) == 1:
        return states[:, :, spans[0][0] : spans[0][1]]
    return torch.cat([states[:, :, start:end] for start, end in spans], dim=2)


def _model_eager(module: torch.nn.Module) -> Callable[..., tuple[Tensor, Any]]:
    """The eager attention function of the module's own modeling file (Gemma 2's applies soft-capping)."""
    return sys.modules[type(module).__module__].eager_attention_forward


def _packed(
    base: Callable[[torch.nn.Module], Callable[..., tuple[Tensor, Any]]], additive: bool
) -> Callable[..., Any]:
    def attention(
        module: torch.nn.Module,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attention_mask: Any,
        packed_attention: PackedAttention | None = None,
        **kwargs: Any,
    ) -> tuple[Tensor, None]:
        function = base(module)
        if packed_attention is None:
            if attention_mask is _MASK_IN_LAYOUT:  # the layout was dropped on the way: never attend unmasked
                raise ConfigError(
                    f"{type(module).__name__} does not pass keyword arguments on to its attention "
                    "function, so it cannot run packed batches; turn packing off"
                )
            return function(module, query, key, value, attention_mask, **kwargs)
        window = kwargs.get("sliding_window")
        additive_dtype = query.dtype if additive else None
        outputs = []
        for index, block in enumerate(packed_attention.blocks):
            mask = packed_attention.block_mask(index, window, additive_dtype)
            output, _ = function(
                module,
                query[:, :, block.queries[0] : block.queries[1]],
                _gather(key, block.keys),
                _gather(value, block.keys),
                mask,
                **kwargs,
            )
            outputs.append(output)  # [1, q, heads, head_dim]
        return torch.cat(outputs, dim=1), None

    return attention


# packed name → (the model's own function for a module, whether its masks are additive)
_BASES: dict[str, tuple[Callable[[torch.nn.Module], Callable[..., tuple[Tensor, Any]]], bool]] = {
    PACKED_SDPA: (lambda module: sdpa_attention_forward, False),
    PACKED_EAGER: (_model_eager, True),
}
for _name, (_base, _additive) in _BASES.items():
    AttentionInterface.register(_name, _packed(_base, _additive))
AttentionMaskInterface.register(PACKED_SDPA, sdpa_mask)
AttentionMaskInterface.register(PACKED_EAGER, eager_mask)

# The probe's tolerance on max |packed − alone| / max(1, max |alone|): fp32's 1e-5 (the CPU tests'), else 8
# units of roundoff of the format attention runs in (u = 2^-8 for bf16's 8-bit significand, 2^-11 for fp16
# and for TF32 matmuls): each path rounds every stored output once (≤ u) and sums in its own order.
_ROUNDOFF = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11}
# The probe's layout: segment [prompt 5 | responses 3, 4], then a segment with an empty prompt [| 2, 1].
_PROBE_SEQUENCES = (((0, 8),), ((0, 5), (8, 12)), ((12, 14),), ((14, 15),))


def _probe_tolerance(device: torch.device, dtype: torch.dtype) -> float:
    if dtype in _ROUNDOFF:
        return 8 * _ROUNDOFF[dtype]
    tf32 = device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    return 8 * 2.0**-11 if tf32 else 1e-5


def _probe_dtypes(model: PreTrainedModel) -> tuple[torch.device, list[torch.dtype]]:
    """Where attention will run and in which dtypes: the model's device, or CUDA for a model still on the
    CPU of a CUDA machine (trainers move it later); there also bf16, which mixed precision runs."""
    parameter = next(model.parameters())
    device = parameter.device
    if device.type == "cpu" and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    dtypes = [parameter.dtype]
    if device.type == "cuda" and torch.cuda.is_bf16_supported() and torch.bfloat16 not in dtypes:
        dtypes.append(torch.bfloat16)
    return device, dtypes


@torch.no_grad()
def probe_packed_attention(model: PreTrainedModel, implementation: str) -> str | None:
    """Why ``implementation`` is not exact for ``model`` on the device it runs on, or None when it is.

    Random queries, keys and values of the model's first attention module's shape go through the packed
    function with a small layout, and each response through the model's own function alone (its prompt
    and itself, causally); the two must agree within :func:`_probe_tolerance`. The CPU tests prove the
    packed path exact; this catches a backend whose kernels break it (a fallback, not a wrong reward)."""
    module = next((m for m in model.modules() if hasattr(m, "num_key_value_groups")), None)
    config = model.config.get_text_config()
    if module is None or next(model.parameters()).device.type == "meta":  # nothing to run it on
        return None
    base, additive = _BASES[implementation]
    function = base(module)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(module, "head_dim", config.hidden_size // heads)
    scaling = getattr(module, "scaling", head_dim**-0.5)
    positions = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7, 5, 6, 7, 8, 0, 1, 0])
    blocks = [AttentionBlock((0, 8), ((0, 8),)), AttentionBlock((8, 12), ((0, 5), (8, 12)))]
    blocks += [AttentionBlock((12, 14), ((12, 14),)), AttentionBlock((14, 15), ((14, 15),))]
    device, dtypes = _probe_dtypes(model)
    generator = torch.Generator().manual_seed(0)
    for dtype in dtypes:
        q, k, v = (torch.randn(1, n, 15, head_dim, generator=generator) for n in (heads, kv_heads, kv_heads))
        q, k, v = (t.to(device, dtype) for t in (q, k, v))
        layout = PackedAttention(blocks, positions.to(device))
        packed = _packed(base, additive)(module, q, k, v, None, layout, dropout=0.0, scaling=scaling)[0]
        worst = 0.0
        for spans in _PROBE_SEQUENCES:
            n = sum(end - start for start, end in spans)
            mask = torch.ones(n, n, dtype=torch.bool, device=device).tril()[None, None]
            if additive:
                mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill_(
                    ~mask, torch.finfo(dtype).min
                )
            alone = function(
                module, _gather(q, spans), _gather(k, spans), _gather(v, spans), mask, dropout=0.0,
                scaling=scaling,
            )[0]  # fmt: skip
            start, end = spans[-1]
            got = packed[:, start:end].float()
            want = alone[:, n - (end - start) :].float()
            worst = max(worst, ((got - want).abs().max() / want.abs().max().clamp(min=1)).item())
        tolerance = _probe_tolerance(device, dtype)
        if not worst <= tolerance:  # NaN fails too
            return (
                f"packed attention differs from the model's own on {device.type} in {dtype} by {worst:.1e} "
                f"(tolerance {tolerance:.1e})"
            )
    return None


def packed_attention_for(model: PreTrainedModel) -> tuple[str | None, str]:
    """(attention implementation that runs packed rows of ``model`` exactly, or None; why).

    SDPA becomes packed SDPA; eager (chosen for soft-capping and the like) becomes packed eager. Anything
    else (flash-attention, flex_attention), or a model with chunked, linear or recurrent layers, has no
    exact packed form here.
    """
    text_config = model.config.get_text_config()
    current = getattr(text_config, "_attn_implementation", None)
    layer_types = getattr(text_config, "layer_types", None) or ["full_attention"]
    if not all(t in EXACT_LAYER_TYPES for t in layer_types):
        return (
            None,
            f"layer types {sorted(set(layer_types) - set(EXACT_LAYER_TYPES))} cannot be packed exactly",
        )
    if current in ("sdpa", PACKED_SDPA):
        return PACKED_SDPA, "SDPA per attention block"
    if current in ("eager", PACKED_EAGER):
        attention_modules = [m for m in model.modules() if hasattr(m, "num_key_value_groups")]
        if not all(
            hasattr(sys.modules[type(m).__module__], "eager_attention_forward") for m in attention_modules
        ):
            return None, "the model's eager attention function was not found"
        return PACKED_EAGER, "eager attention per attention block"
    return None, f"attention '{current}' has no packed form (use sdpa or eager)"


def enable_packed_attention(model: PreTrainedModel) -> tuple[bool, str]:
    """Switch ``model`` to its exact packed attention; (whether there is one, why or why not). The packed
    function is first checked against the model's own on the device it will run on
    (:func:`probe_packed_attention`)."""
    implementation, reason = packed_attention_for(model)
    if implementation is None:
        return False, reason
    mismatch = probe_packed_attention(model, implementation)
    if mismatch is not None:
        return False, mismatch
    if implementation != model.config.get_text_config()._attn_implementation:
        model.set_attn_implementation(implementation)
    return True, reason


def backbone_attention(packed: PackedAttention, model: PreTrainedModel) -> tuple[Tensor, dict[str, Any]]:
    """(attention_mask, extra keyword arguments) for ``model``'s backbone to run ``packed``.

    The model must already run its packed attention (:func:`enable_packed_attention`, called once where
    the model is built); a packed row through any other attention would attend across pairs."""
    if model.config.get_text_config()._attn_implementation not in (PACKED_SDPA, PACKED_EAGER):
        implementation, reason = packed_attention_for(model)
        why = reason if implementation is None else "its packed attention was not enabled"
        raise ConfigError(f"this model cannot run packed batches: {why}; turn packing off")
    return _MASK_IN_LAYOUT, {"packed_attention": packed}
