"""reWordBench's deterministic, rule-based transformations (Wu et al. 2025), for when its data is not at hand.

reWordBench rewrites RewardBench inputs in meaning- or ranking-preserving ways and reports the accuracy on
each rewrite against the original. Its released data is the reference; where it is absent, these rules
rebuild the transformations that need no model and no randomness. Each rule is rmguard's reading of the
paper's description (docs/evaluation.md lists which of the paper's transformations are here and why the
others are not), so numbers on them are comparable across models scored here, not to the paper's tables.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from rmguard.eval.eval_sets import EvalSet
from rmguard.registry import Registry

RULE_MARK = "rmguard's rule"


@dataclass(frozen=True)
class Transform:
    """One rewrite: ``apply`` maps a text to its rewrite; ``role`` says whose turns it rewrites (``user``:
    the prompt, meaning-preserving; ``assistant``: both responses alike, ranking-preserving)."""

    apply: Callable[[str], str]
    role: str


def add_quotes(text: str) -> str:
    """The instruction inside double quotes: ``"TEXT"``."""
    return f'"{text}"'


def punctuation_spaces(text: str) -> str:
    """A space on each side of every punctuation mark, runs of spaces then squeezed to one:
    ``Hi, you!`` → ``Hi , you !``."""
    spaced = re.sub(r"([^\w\s])", r" \1 ", text)
    return re.sub(r" {2,}", " ", spaced).strip(" ")


def stress_test(text: str) -> str:
    """The tautology distractor of NLI stress tests (Naik et al. 2018), appended five times:
    ``TEXT and true is true and true is true …``."""
    return text + " and true is true" * 5


def answer_header(text: str) -> str:
    r"""A math answer's format changed from ``\boxed{X}`` to a Markdown header: ``# Answer\n\nX`` (the
    paper's example: a boxed final answer rewritten so); a text without ``\boxed{…}`` stays as it is.
    Braces nested inside the box are kept whole."""
    out, start = [], 0
    for match in re.finditer(r"\\boxed\{", text):
        if match.start() < start:
            continue
        depth, end = 1, match.end()
        while end < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            end += 1
        if depth:
            break  # an unclosed box: leave the rest as it is
        out.append(text[start : match.start()] + "# Answer\n\n" + text[match.end() : end - 1])
        start = end
    return "".join(out) + text[start:]


TRANSFORMS: Registry[Transform] = Registry(
    "reWordBench transformation",
    {
        "add_quotes": Transform(add_quotes, "user"),
        "punct_spaces": Transform(punctuation_spaces, "user"),
        "stress_test": Transform(stress_test, "user"),
        "answer_header": Transform(answer_header, "assistant"),
    },
)


def _rewrite(text, transform: Transform):
    if isinstance(text, str):
        return transform.apply(text)
    return [
        {**m, "content": transform.apply(m["content"])} if m["role"] == transform.role else m for m in text
    ]


def transform_set(eval_set: EvalSet, name: str) -> EvalSet:
    """A copy of a pairs set with every prompt (``user`` rules) or every response (``assistant`` rules)
    rewritten by transformation ``name``; ids, subsets and groups are kept, so pairs match by id. Its path
    says that rmguard's rule made it."""
    transform = TRANSFORMS.lookup(name)
    side = "prompts" if transform.role == "user" else "responses"
    rewritten = [_rewrite(text, transform) for text in getattr(eval_set, side)]
    path = f"{eval_set.path} ({RULE_MARK} {name})"
    return dataclasses.replace(eval_set, name=name, path=path, **{side: rewritten})
