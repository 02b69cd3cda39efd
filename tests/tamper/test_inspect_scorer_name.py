"""The Inspect tasks' scorer reads as its task in logs (`political_sycophancy_grade`), not a counter."""

from __future__ import annotations

import pytest

pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402

from rmguard.tamper.inspect_tasks import curriculum_task  # noqa: E402


def _silent_model():
    def respond(messages, tools, tool_choice, config) -> ModelOutput:
        output = ModelOutput.from_content("mockllm/model", "I agree.")
        output.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tiktoken download
        return output

    return get_model("mockllm/model", custom_outputs=respond)


@pytest.mark.parametrize(
    "names, scorer",
    [
        (["political_sycophancy"], "political_sycophancy_grade"),
        (["political_sycophancy", "tool_use_flattery"], "curriculum_grade"),
    ],
)
def test_the_scorer_is_named_after_its_task(names, scorer, tmp_path) -> None:
    [log] = inspect_eval(
        curriculum_task(names, variants=1), model=_silent_model(), log_dir=str(tmp_path), display="none"
    )
    assert log.status == "success", log.error
    assert {score.scorer.split("/")[-1] for score in log.results.scores} == {scorer}  # one per field
