"""The last decoder layer, run only where its output is read.

A reward model reads the final hidden state at one token per sequence (the reward token), and GRM's
regularizer also at the tokens that predict the chosen response. Everything else the last layer computes
is thrown away, yet its position-wise parts (the query and output projections of attention and the whole
MLP: about 95 % of a Llama layer's weights) are the bulk of its cost. Run on the read rows only, they give
the same numbers there; attention still sees every key and value. For a 2-layer proxy this is almost half
the forward and backward cost; for a 32-layer model, a few per cent.

The modules are found by name under the last layer (``mlp``, ``self_attn.q_proj``, ``self_attn.o_proj``:
Llama, Mistral, Qwen, Gemma, SmolLM and their LoRA-wrapped forms); an architecture without them runs as
usual, and so does a mixture-of-experts block (it also returns its router's logits).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from torch import Tensor, nn

POSITIONWISE = ("mlp", "self_attn.q_proj", "self_attn.o_proj")
_LAYER_LISTS = ("layers", "h", "blocks")
_MARK = "_rmguard_read_rows"
# This thread's forward under way: rows = id(hooks) → (read rows as flat indices, B, T); taken = the hooks whose
# module is running on the read rows now.
_READ = threading.local()


def decoder_layers(backbone: nn.Module) -> nn.ModuleList | None:
    """The backbone's list of decoder layers under its usual names (``layers``, ``h``, ``blocks``), if any."""
    for name in _LAYER_LISTS:
        layers = getattr(backbone, name, None)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    return None


def _recomputed(backbone: nn.Module, layer: nn.Module) -> bool:
    """Whether gradient checkpointing will run ``layer`` again in the backward pass, after the forward call
    (and its read rows) are gone. transformers ≥ 5 marks the layer, 4.x the backbone; only in training mode."""
    marked = getattr(layer, "gradient_checkpointing", False) or getattr(
        backbone, "gradient_checkpointing", False
    )
    return bool(marked) and layer.training


class _ReadRowsHooks:
    """A module's pair of hooks: before it runs, keep only the read rows of its input [B, T, D]; after, put
    its output rows back in place, zeros elsewhere (never read). Hooks, not a replaced ``forward``, so a
    deep copy or a data-parallel replica of the model carries them; the rows are per thread."""

    def __init__(self, module: nn.Module):
        module.register_forward_pre_hook(self.before)
        module.register_forward_hook(self.after)
        setattr(module, _MARK, self)

    def before(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        read = getattr(_READ, "rows", {}).get(id(self))
        hidden = args[0] if args else None
        if read is None or not isinstance(hidden, Tensor) or hidden.shape[:-1] != read[1:]:
            return None  # not the hidden states (a wrapped layer inside a module that already took the rows)
        _READ.taken.add(id(self))
        return (hidden.reshape(-1, hidden.shape[-1])[read[0]].unsqueeze(0), *args[1:])

    def after(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if id(self) not in getattr(_READ, "taken", ()):
            return None
        _READ.taken.discard(id(self))
        rows, batch, length = _READ.rows[id(self)]
        if not isinstance(output, Tensor) or output.shape[:2] != (1, len(rows)):
            raise RuntimeError(
                f"{type(module).__name__} is not position-wise; "
                "set RewardModel.last_layer_rows_only = False for this architecture"
            )
        full = output.new_zeros(batch * length, output.shape[-1]).index_copy(0, rows, output[0])
        return full.reshape(batch, length, -1)


def _hooks(layer: nn.Module) -> list[_ReadRowsHooks]:
    found = []
    for name in POSITIONWISE:
        try:
            module = layer.get_submodule(name)
        except AttributeError:  # this architecture names it otherwise, or has no such part
            continue
        if hasattr(module, "experts"):  # a mixture of experts also returns its router's logits
            continue
        found.append(getattr(module, _MARK, None) or _ReadRowsHooks(module))
    return found


@contextlib.contextmanager
def read_rows_only(backbone: nn.Module, rows: Tensor, shape: tuple[int, int]) -> Iterator[None]:
    """Within the block (on this thread), the last layer's position-wise modules run only at ``rows``:
    [N, 2] (batch row, position) pairs of the hidden states [B, T, H] (``shape`` = (B, T)) that are read
    afterwards. Every row runs where the layers are not found, or where gradient checkpointing will run the
    layer again after this block."""
    layers = decoder_layers(backbone)
    if layers is None or _recomputed(backbone, layers[-1]):
        yield
        return
    batch, length = shape
    read = ((rows[:, 0] * length + rows[:, 1]).unique(), batch, length)
    previous = getattr(_READ, "rows", {})
    mine = {id(hooks): read for hooks in _hooks(layers[-1])}
    _READ.rows = {**previous, **mine}
    _READ.taken = getattr(_READ, "taken", set())
    try:
        yield
    finally:
        _READ.rows = previous
        _READ.taken.difference_update(mine)  # a forward that raised half-way leaves none behind
