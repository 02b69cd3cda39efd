"""WARM: weight-averaged reward models (Ramé et al. 2024).

Reward models fine-tuned from one initialisation stay linearly connected, so the average of their weights
is itself a good reward model, and a more robust one than any member: one model's cost at scoring time,
the ensemble's robustness to distribution shift and label noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from rmguard.errors import ConfigError


def average_state_dicts(
    state_dicts: Sequence[Mapping[str, Tensor]], names: Sequence[str] | None = None
) -> dict[str, Tensor]:
    """θ_WARM = (1/M) Σ_i θ_i over M state dicts with the same keys and shapes (WARM's uniform average).

    Floating-point tensors are averaged in float64 and cast back to their own dtype; any other tensor (an
    integer buffer) must be equal in every member and is kept. Members that differ in keys, shapes or
    dtypes are refused with one line naming the first difference; ``names`` label the members in it
    (default: model 1, model 2 ...).
    """
    names = list(names) if names is not None else [f"model {i + 1}" for i in range(len(state_dicts))]
    if len(state_dicts) < 2:
        raise ConfigError(f"averaging needs at least two models, got {len(state_dicts)}")
    first, first_name = state_dicts[0], names[0]
    for other, name in zip(state_dicts[1:], names[1:]):
        _check_same_layout(first, first_name, other, name)
    averaged = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(sd[key].to(torch.float64) for sd in state_dicts)
            averaged[key] = (total / len(state_dicts)).to(tensor.dtype)
        else:
            for sd, name in zip(state_dicts[1:], names[1:]):
                if not torch.equal(sd[key], tensor):
                    raise ConfigError(f"{name}: '{key}' differs from {first_name}'s and is not a weight")
            averaged[key] = tensor.clone()
    return averaged


def _check_same_layout(
    first: Mapping[str, Tensor], first_name: str, other: Mapping[str, Tensor], name: str
) -> None:
    missing, extra = sorted(set(first) - set(other)), sorted(set(other) - set(first))
    if missing or extra:
        what = f"lacks '{missing[0]}'" if missing else f"has '{extra[0]}' that {first_name} lacks"
        raise ConfigError(f"{name} {what}: models of different architecture cannot be averaged")
    for key, tensor in first.items():
        if other[key].shape != tensor.shape or other[key].dtype != tensor.dtype:
            raise ConfigError(
                f"{name}: '{key}' is {tuple(other[key].shape)} {other[key].dtype}, {first_name}'s is "
                f"{tuple(tensor.shape)} {tensor.dtype}: models of different architecture cannot be averaged"
            )
