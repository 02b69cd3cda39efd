"""WARM: the weight average against a hand average, and the refusals."""

from __future__ import annotations

import pytest
import torch

from rmguard.errors import ConfigError
from rmguard.training.averaging import average_state_dicts


def test_average_of_state_dicts_by_hand():
    a = {
        "w": torch.tensor([[1.0, 2.0]]),
        "b": torch.tensor([0.5], dtype=torch.bfloat16),
        "ids": torch.arange(3),
    }
    b = {
        "w": torch.tensor([[3.0, -2.0]]),
        "b": torch.tensor([1.5], dtype=torch.bfloat16),
        "ids": torch.arange(3),
    }
    c = {
        "w": torch.tensor([[2.0, 3.0]]),
        "b": torch.tensor([1.0], dtype=torch.bfloat16),
        "ids": torch.arange(3),
    }
    two = average_state_dicts([a, b])
    assert two["w"].tolist() == [[2.0, 0.0]]
    assert two["b"].dtype == torch.bfloat16 and two["b"].tolist() == [1.0]
    assert torch.equal(two["ids"], torch.arange(3))
    assert average_state_dicts([a, b, c])["w"].tolist() == [[2.0, 1.0]]


def test_mismatched_state_dicts_are_refused():
    a = {"w": torch.zeros(2, 3), "ids": torch.arange(3)}
    with pytest.raises(ConfigError, match="at least two"):
        average_state_dicts([a])
    with pytest.raises(ConfigError, match="B lacks 'ids'"):
        average_state_dicts([a, {"w": torch.zeros(2, 3)}], names=["A", "B"])
    with pytest.raises(ConfigError, match=r"B: 'w' is \(3, 2\)"):
        average_state_dicts([a, {"w": torch.zeros(3, 2), "ids": torch.arange(3)}], names=["A", "B"])
    with pytest.raises(ConfigError, match="'ids' differs"):
        average_state_dicts([a, {"w": torch.zeros(2, 3), "ids": torch.arange(1, 4)}], names=["A", "B"])
