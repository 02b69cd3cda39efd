"""The last decoder layer, run only where its output is read.

A reward model reads the final hidden state at one token per sequence (the reward token), and GRM's
regularizer also at the tokens that predict the chosen response. Everything else the last layer computes
is thrown away, yet its position-wise parts (the query and output projections of attention and the whole
MLP: about 80 % of a Llama layer's weights) are the bulk of its cost. Run on the read rows only, they give
the same numbers there; attention still sees every key and value. For a 2-layer proxy this is almost half
the forward and backward cost; for a 32-layer model, a few per cent.

The modules are found by name under the last layer (``mlp``, ``self_attn.q_proj``, ``self_attn.o_proj``:
Llama, Mistral, Qwen, Gemma, SmolLM and their LoRA-wrapped forms); an architecture without them runs as
usual. A module whose output is not a tensor of the input's length (a mixture-of-experts block that also
returns router logits) is left alone after its first call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

POSITIONWISE = ("mlp", "self_attn.q_proj", "self_attn.o_proj")
_LAYER_LISTS = ("layers", "h", "blocks")


def last_layer(backbone: nn.Module) -> nn.Module | None:
    """The backbone's last decoder layer, or None where the layers are not a list under a usual name."""
    for name in _LAYER_LISTS:
        layers = getattr(backbone, name, None)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers[-1]
    return None


class _RowsOnly:
    """Replaces one module's ``forward`` (on the instance, so weights and saved keys are untouched)."""

    def __init__(self, module: nn.Module):
        self.inner = module.forward
        self.rows: Tensor | None = None
        self.usable = True
        module.forward = self

    def __call__(self, hidden: Tensor, *args: Any, **kwargs: Any) -> Any:
        if self.rows is None or not self.usable or hidden.dim() != 3:
            return self.inner(hidden, *args, **kwargs)
        batch, length, _ = hidden.shape
        picked = self.inner(hidden.reshape(batch * length, -1)[self.rows].unsqueeze(0), *args, **kwargs)
        if not isinstance(picked, Tensor) or picked.shape[:2] != (1, len(self.rows)):
            self.usable = False
            return self.inner(hidden, *args, **kwargs)
        full = picked.new_zeros(batch * length, picked.shape[-1]).index_copy(0, self.rows, picked[0])
        return full.reshape(batch, length, -1)


def _patched(backbone: nn.Module) -> list[_RowsOnly]:
    layer = last_layer(backbone)
    found = []
    for name in POSITIONWISE if layer is not None else ():
        try:
            module = layer.get_submodule(name)
        except AttributeError:  # this architecture names it otherwise, or has no such part
            continue
        forward = module.forward
        found.append(forward if isinstance(forward, _RowsOnly) else _RowsOnly(module))
    return found


@contextlib.contextmanager
def read_rows_only(backbone: nn.Module, rows: Tensor, length: int) -> Iterator[None]:
    """Within the block, the last layer's position-wise modules run only at ``rows``: [N, 2] (batch row,
    position) pairs of the hidden states [B, ``length``, H] that are read afterwards."""
    flat = (rows[:, 0] * length + rows[:, 1]).unique()
    patched = _patched(backbone)
    for module in patched:
        module.rows = flat
    try:
        yield
    finally:
        for module in patched:
            module.rows = None
