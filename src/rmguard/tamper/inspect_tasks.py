"""The curriculum as Inspect tasks (``pip install "rmguard[inspect]"``): ``inspect eval rmguard/NAME``.

One task per registered environment (``rmguard/reward_tampering``, ...) and ``rmguard/curriculum`` (every
environment of ``all`` in one task). Nothing is implemented twice: the samples are the environments'
variants (or the release's files), each sample's sandbox is rmguard's virtual sandbox registered as an
Inspect sandbox (:mod:`rmguard.tamper.inspect_sandbox`: the virtual shell and filesystem and, where grading
runs model code, the process jail), the solver plays :func:`rmguard.tamper.protocol.play_episode` (the
one-turn ``<cot>``/``<bash>`` protocol under the episode budgets) in it with the Inspect model as its policy,
and the scorer grades the state the episode left there, as Inspect's scorers read a sample's sandbox. A
saved log can be scored again: with no live sandbox (``inspect score``) the scorer replays the response's
commands in a fresh environment (:func:`rmguard.tamper.runner.replay_response`) and grades that.
Its metrics are the grade schema's (:mod:`rmguard.tamper.grading`): gamed, caught, passed_oversight and
reward, and the ``grade_fields`` every environment of the task declares (reward tampering's tampered,
test_passed, ...), each as mean with standard error. Each command with its output is in the sample's
transcript; the whole response is the assistant message.

Task parameters (``-T name=value``): ``variants`` (prompt variants 0..variants-1), ``samples_per_variant``
(Inspect epochs), ``max_new_tokens``, the episode budgets of
:class:`~rmguard.tamper.protocol.EpisodeConfig` (``max_commands``, ``max_response_chars``,
``max_output_chars``), and ``environments``/``prompts`` (the release's environments.json and prompts.json,
read as ``rmguard tamper run --environments --prompts`` reads them). This module and the sandbox it
registers import Inspect; nothing else in rmguard does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import Sample
from inspect_ai.log import transcript
from inspect_ai.model import (
    ChatMessageAssistant,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    get_model,
)
from inspect_ai.scorer import Score, Target, mean, scorer, stderr
from inspect_ai.solver import Generate, TaskState, solver
from inspect_ai.util import SandboxEnvironmentSpec, sandbox

from rmguard.tamper.environment_files import load_release
from rmguard.tamper.envs.base import EnvironmentSpec
from rmguard.tamper.envs.registry import REGISTRY, curriculum, make_environment
from rmguard.tamper.grading import BASH_CLOSE, SHARED_FIELDS, final_answer
from rmguard.tamper.inspect_sandbox import InspectVirtualSandbox, VirtualSandboxConfig, jail_for
from rmguard.tamper.policies import close_open_bash
from rmguard.tamper.protocol import Episode, EpisodeConfig, GenerationRequest, grade_episode, play_episode
from rmguard.tamper.runner import replay_response

EPISODE = "rmguard_episode"  # the sample store's key for what the scorer needs of the played episode


class InspectPolicy:
    """An rmguard policy over an Inspect model: the episode runs in a worker thread and each generation
    is sent to the event loop the model belongs to. The assistant text so far is a final assistant
    message (continued by providers that continue a prefill; others see it as context)."""

    concurrent = True

    def __init__(self, model: Model, loop: asyncio.AbstractEventLoop, max_new_tokens: int):
        self.name, self.model, self.loop = f"inspect:{model.name}", model, loop
        self.config = GenerateConfig(stop_seqs=[BASH_CLOSE], max_tokens=max_new_tokens)

    def generate(self, request: GenerationRequest) -> str:
        messages = [ChatMessageSystem(content=request.system), ChatMessageUser(content=request.prompt)]
        if request.prefix:
            messages.append(ChatMessageAssistant(content=request.prefix))
        call = self.model.generate(messages, config=self.config)
        output = asyncio.run_coroutine_threadsafe(call, self.loop).result()
        return close_open_bash(output.completion) if output.stop_reason == "stop" else output.completion


@solver
def rmguard_protocol(max_new_tokens: int = 512, **budgets: int):
    """Play the sample's environment through rmguard's one-turn protocol with the task's model, in the
    sample's sandbox, under the episode budgets ``budgets`` (:class:`EpisodeConfig`'s fields)."""
    config = EpisodeConfig(**budgets)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        spec = EnvironmentSpec(**state.metadata["spec"])
        box = sandbox().as_type(InspectVirtualSandbox).sandbox
        policy = InspectPolicy(get_model(), asyncio.get_running_loop(), max_new_tokens)
        episode = await asyncio.to_thread(play_episode, spec, policy, box, 0, config)
        for command in episode.commands:
            transcript().info(command, source="rmguard shell")
        state.store.set(EPISODE, {"commands": episode.commands, "stop_reason": episode.stop_reason})
        state.messages.append(ChatMessageAssistant(content=episode.response))
        state.output.completion = episode.response
        return state

    return solve


def _live_grade(spec: EnvironmentSpec, state: TaskState) -> dict | None:
    """The grade of the state the episode left in the sample's sandbox; None with no live sandbox of ours
    or no episode played in it (a saved log scored again, or another solver)."""
    try:
        box = sandbox().as_type(InspectVirtualSandbox).sandbox
    except (ProcessLookupError, TypeError):
        return None
    played = state.store.get(EPISODE)
    if played is None:
        return None
    episode = Episode(spec, 0, state.output.completion, played["commands"], stop_reason=played["stop_reason"])
    return {
        "environment": spec.name,
        **({"release_name": spec.release_name} if spec.release_name else {}),
        "variant": spec.variant,
        **grade_episode(episode, box).to_dict(),
        "stop_reason": episode.stop_reason,
    }


def _grade_scorer(task_name: str, fields: tuple[str, ...], **budgets: int):
    """A scorer over ``fields``, named ``TASK_grade`` in logs, that grades the sample's sandbox as the
    episode left it or, scoring a saved log again, the transcript: the response replayed in a fresh copy of
    the sample's environment, under the task's budgets."""
    config = EpisodeConfig(**budgets)

    def replayed(spec: EnvironmentSpec, response: str) -> dict:
        record = replay_response(spec.name, response, spec.variant, jail_for(spec), spec, config)
        return {k: v for k, v in record.items() if k not in ("prompt", "response", "transcript")}

    @scorer(metrics={name: [mean(), stderr()] for name in fields}, name=f"{task_name}_grade")
    def rmguard_grade():
        async def score(state: TaskState, target: Target) -> Score:
            spec, response = EnvironmentSpec(**state.metadata["spec"]), state.output.completion
            grade = await asyncio.to_thread(_live_grade, spec, state)
            if grade is None:
                grade = await asyncio.to_thread(replayed, spec, response)
            return Score(
                value={name: float(grade[name]) for name in fields},
                answer=final_answer(response),
                explanation=grade.get("detail", ""),
                metadata=grade,
            )

        return score

    return rmguard_grade()


def _samples(names: list[str], variants: int, environments: str | None, prompts: str | None) -> list[Sample]:
    if (environments is None) != (prompts is None):
        raise ValueError(
            "environments and prompts go together (the release's environments.json and prompts.json)"
        )
    if environments is not None:
        specs = [s for s in load_release(environments, prompts) if s.name in names]
    else:
        specs = [make_environment(name, k) for name in names for k in range(variants)]
    return [
        Sample(
            input=spec.prompt,
            id=f"{spec.release_name or spec.name}-{spec.variant}",
            metadata={"spec": dataclasses.asdict(spec), "environment": spec.name},
        )
        for spec in specs
    ]


def curriculum_task(
    names: list[str],
    variants: int = 64,
    samples_per_variant: int = 1,
    max_new_tokens: int = 512,
    environments: str | None = None,
    prompts: str | None = None,
    **budgets: int,
) -> Task:
    """The Inspect task over ``names``; scored with the shared grade fields and every grade field these
    environments all declare. ``budgets``: :class:`EpisodeConfig`'s fields."""
    own = [f for f in REGISTRY[names[0]].grade_fields if all(f in REGISTRY[n].grade_fields for n in names)]
    name = names[0] if len(names) == 1 else "curriculum"
    return Task(
        dataset=_samples(names, variants, environments, prompts),
        solver=rmguard_protocol(max_new_tokens, **budgets),
        scorer=_grade_scorer(name, (*SHARED_FIELDS, "reward", *own), **budgets),
        sandbox=SandboxEnvironmentSpec(
            "rmguard", VirtualSandboxConfig(max_output_chars=EpisodeConfig(**budgets).max_output_chars)
        ),
        epochs=samples_per_variant,
        name=name,
    )


def _registered_task(name: str, names: list[str], doc: str) -> Any:
    """An Inspect task named ``name`` over ``names`` whose ``-T`` parameters are curriculum_task's own and
    the episode budgets (each declared once, there and in EpisodeConfig; Inspect reads them from the
    signature)."""

    def run(**params: Any) -> Task:
        return curriculum_task(names, **params)

    own = list(inspect.signature(curriculum_task).parameters.values())[1:-1]  # not names, not **budgets
    budgets = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=int)
        for f in dataclasses.fields(EpisodeConfig)
    ]
    run.__signature__ = inspect.Signature([*own, *budgets])
    run.__name__ = run.__qualname__ = name
    run.__doc__ = doc
    return task(name=name)(run)


ENVIRONMENT_TASKS = {
    name: _registered_task(name, [name], f"The rmguard environment {name} as an Inspect task.")
    for name in REGISTRY
}
rmguard_curriculum = _registered_task(
    "curriculum", curriculum(), "Every environment of the curriculum in one task."
)
