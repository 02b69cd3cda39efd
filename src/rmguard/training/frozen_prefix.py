"""Reuse of the frozen part's outputs: the bottom of a reward model computed once per token context.

With ``freeze_embeddings`` and ``freeze_layers = k`` the embeddings and the first k decoder layers never
change, so the hidden state entering layer k is a fixed function of a token's causal context: the token
and every token it attends to. A :class:`FrozenOutputs` store keeps that state for every context it has
seen, in a prefix tree of tokens (a prompt shared by many responses is kept once). A forward whose tokens
are all in the store skips the embeddings' consumers and the k frozen layers: they pass their input on,
and the last of them returns the stored states, so layer k and everything above run as usual (gradient
checkpointing included: layer k receives a plain tensor). A forward with a context not yet seen runs in
full and adds what is new. From the second epoch on (or the second proxy on the same frozen part, within
one process) only the trainable top runs.

A token's context is read from the batch's own layout: its parent is the latest earlier real token of the
same row whose position is one less (position 0 starts a context). That holds for padded rows (left or
right) and for rmguard's packed rows, where later responses continue from their prompt's last position.

Exact up to the order of floating-point sums: a state computed in another batch differs only by how the
batch was laid out (tests hold rewards and trained weights within 1e-5 in fp32). Refused where it could
not be exact: trainable parameters in the frozen part, or dropout there.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rmguard.errors import ConfigError
from rmguard.fileio import atomic_write_bytes
from rmguard.training.last_layer import decoder_layers


class FrozenOutputs:
    """Hidden states entering the first trainable layer, one per token context seen.

    Node 0 is the empty context; node i > 0 is (parent node, token) in ``_children`` with its state in
    row i − 1 of ``states``."""

    def __init__(self, layers: int, fingerprint: str):
        self.layers = layers
        self.fingerprint = fingerprint
        self._children: dict[tuple[int, int], int] = {}
        self._chunks: list[Tensor] = []
        self._states: Tensor | None = None
        self.hits = 0  # forwards served from the store
        self.misses = 0  # forwards run in full

    def __deepcopy__(self, memo: dict) -> FrozenOutputs:
        return self  # a copy of the model (GRM-DPO's live reference) has the same frozen part: one store

    @property
    def contexts(self) -> int:
        return len(self._children)

    @property
    def states(self) -> Tensor:
        if self._states is None or len(self._states) != self.contexts:
            self._states = torch.cat(self._chunks) if self._chunks else torch.empty(0)
            self._chunks = [self._states]
        return self._states

    def nodes(self, input_ids: Tensor, position_ids: Tensor, real: Tensor) -> tuple[Tensor, dict]:
        """Each token's node ([B, T], 0 where not real) and the contexts not in the store yet
        ((parent, token) → provisional node, numbered after the store's)."""
        ids, positions, mask = input_ids.tolist(), position_ids.tolist(), real.tolist()
        found = torch.zeros(input_ids.shape, dtype=torch.long)
        new: dict[tuple[int, int], int] = {}
        for row in range(len(ids)):
            last: dict[int, int] = {}  # position → the latest node at it in this row
            for column, (token, position) in enumerate(zip(ids[row], positions[row])):
                if not mask[row][column]:
                    continue
                key = (last[position - 1] if position > 0 else 0, token)
                node = self._children.get(key) or new.get(key)
                if node is None:
                    node = new[key] = len(self._children) + len(new) + 1
                last[position] = found[row, column] = node
        return found, new

    def add(self, new: dict[tuple[int, int], int], found: Tensor, hidden: Tensor) -> None:
        """Keep the states of the ``new`` contexts, read from a full forward's ``hidden`` [B, T, H]."""
        flat_nodes, flat = found.reshape(-1), hidden.detach().reshape(-1, hidden.shape[-1])
        first = self.contexts + 1
        where = torch.full((len(new),), -1, dtype=torch.long)
        fresh = flat_nodes >= first
        where[flat_nodes[fresh] - first] = fresh.nonzero().squeeze(1)
        self._chunks.append(flat[where.to(flat.device)].clone())
        self._children.update(new)

    def gather(self, found: Tensor, like: Tensor) -> Tensor:
        """The stored states laid out as the batch is ([B, T, H]; zeros where no token is), in ``like``'s
        device and dtype. Only the batch's rows are read and moved: the store can hold gigabytes (a study's
        frozen pass over 21,840 responses is 1.9 GB), and copying it per batch would cost more than the
        layers it saves."""
        states = self.states
        nodes = found.reshape(-1).to(states.device)
        out = states.new_zeros(len(nodes), states.shape[-1])
        real = nodes > 0
        out[real] = states[nodes[real] - 1]
        return out.reshape(*found.shape, -1).to(device=like.device, dtype=like.dtype)


def frozen_part(model: Any, layers: int) -> list[nn.Module]:
    """The input embeddings and the first ``layers`` decoder layers of a RewardModel, checked to be frozen
    and free of dropout (so their outputs are a fixed function of the tokens)."""
    backbone = model.backbone
    stack = decoder_layers(backbone)
    if stack is None or not 1 <= layers < len(stack):
        count = "no list of" if stack is None else f"{len(stack)}"
        raise ConfigError(f"reuse_frozen_outputs needs 1 <= freeze_layers < the model's layers ({count})")
    part = [model.transformer.get_input_embeddings(), *stack[:layers]]
    for index, module in enumerate(part):
        where = "the input embeddings" if index == 0 else f"layer {index - 1}"
        trainable = [name for name, p in module.named_parameters() if p.requires_grad]
        if trainable:
            raise ConfigError(
                f"reuse_frozen_outputs: {where} has trainable parameters ({trainable[0]}); "
                "it needs freeze_embeddings and freeze_layers"
            )
        if any(n.startswith("lora_B") or ".lora_B." in n for n, p in module.named_parameters() if p.any()):
            raise ConfigError(f"reuse_frozen_outputs: {where} carries LoRA weights that are not zero")
    dropout = getattr(model.config.get_text_config(), "attention_dropout", 0.0) or 0.0
    # LoRA's dropout in a frozen layer feeds a zero lora_B (checked above): it changes nothing
    in_layers = [
        m.p
        for layer in part[1:]
        for name, m in layer.named_modules()
        if isinstance(m, nn.Dropout) and "lora_dropout" not in name
    ]
    if dropout > 0 or any(p > 0 for p in in_layers):
        raise ConfigError("reuse_frozen_outputs: the frozen layers have dropout; set disable_dropout")
    return part


# The process's store, kept for the next model on the same frozen part (another seed or objective of a
# study, a second run in a notebook); one at a time, so memory holds one frozen part's states.
_KEPT: dict[tuple[int, str], FrozenOutputs] = {}


def attach(model: Any, layers: int) -> FrozenOutputs:
    """Make ``model`` (a RewardModel) reuse the outputs of its embeddings and first ``layers`` decoder
    layers, from the process's store for that frozen part (by its weights' fingerprint). Returns the store."""
    from rmguard.training.modeling import weights_fingerprint

    key = (layers, weights_fingerprint(nn.ModuleList(frozen_part(model, layers))))
    if key not in _KEPT:
        _KEPT.clear()
        _KEPT[key] = FrozenOutputs(*key)
    model.frozen_outputs = _KEPT[key]
    return model.frozen_outputs


def save(store: FrozenOutputs, path: str | Path) -> None:
    """Write ``store`` to one file (atomically), for other processes on the same frozen part: a study's
    workers load what its parent computed once."""
    keys = torch.tensor(list(store._children), dtype=torch.long).reshape(-1, 2)
    order = torch.tensor(list(store._children.values()), dtype=torch.long)
    buffer = io.BytesIO()
    torch.save(
        {
            "layers": store.layers,
            "fingerprint": store.fingerprint,
            "keys": keys[order.argsort()],
            "states": store.states,
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())


def load(path: str | Path) -> FrozenOutputs:
    """A store written by :func:`save`, kept as the process's store (the next :func:`attach` on the same
    frozen part uses it)."""
    saved = torch.load(path, weights_only=True)
    store = FrozenOutputs(saved["layers"], saved["fingerprint"])
    store._children = {(int(p), int(t)): k for k, (p, t) in enumerate(saved["keys"].tolist(), start=1)}
    store._chunks = [saved["states"]]
    _KEPT.clear()
    _KEPT[(store.layers, store.fingerprint)] = store
    return store


def forget() -> None:
    """Drop the process's store (its memory goes with the last model that holds it)."""
    _KEPT.clear()


@contextlib.contextmanager
def reusing(
    store: FrozenOutputs, backbone: nn.Module, input_ids: Tensor, position_ids: Tensor, attention_mask: Any
) -> Iterator[None]:
    """Within the block, the backbone's forward on these inputs reads the frozen part from ``store`` (or
    runs it in full and fills the store with the contexts it had not seen)."""
    real = attention_mask.bool() if isinstance(attention_mask, Tensor) else torch.ones_like(input_ids).bool()
    found, new = store.nodes(input_ids, position_ids, real)
    layers = decoder_layers(backbone)[: store.layers]
    if new:
        store.misses += 1
        captured: list[Tensor] = []
        handle = layers[-1].register_forward_hook(lambda _m, _a, output: captured.append(output))
        try:
            yield
        finally:
            handle.remove()
        if captured and isinstance(captured[0], Tensor):
            store.add(new, found, captured[0])
        return
    store.hits += 1
    states = store.gather(found, backbone.get_input_embeddings().weight)
    for layer in layers[:-1]:
        layer.forward = _pass_on
    layers[-1].forward = lambda *args, **kwargs: states
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def _pass_on(hidden_states: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """A frozen layer whose output is already known: what it was given goes on unchanged."""
    return hidden_states
