"""Training-pair augmentations (``pair_augmentation``, the :data:`PAIR_AUGMENTATIONS` registry).

none  the pairs as they are.
rrm   Liu et al. 2024, "RRM: Robust Reward Model Training Mitigates Reward Hacking" (arXiv 2409.13156):
      causal augmentation with responses written for other prompts, so that what does not depend on the
      prompt (length, format) stops carrying the label.

RRM's construction, as the authors' released script builds it (RLHFlow/RLHF-Reward-Modeling,
``pair-pm/RRM/rrm_augmentation.py``): two random permutations σ1, σ2 of the N pairs give each pair i
(x_i, y_i^w, y_i^l) two other pairs j = σ1(i), k = σ2(i), and i gets 14 new pairs, all with prompt x_i:

* 8 non-contextual pairs: each of i's own responses {y_i^w, y_i^l} beats each off-prompt response
  {y_j^w, y_j^l, y_k^w, y_k^l} (a response to another prompt is worse than any response to this one);
* 6 neutral pairs: the C(4, 2) pairs of the four off-prompt responses are ties (for x_i neither is
  better; which was better for its own prompt is an artefact here).

Training sees the original pairs and the augmented ones (14 per original pair, 8 : 6). Two deviations
from the script, both where it would give a wrong label: j and k are drawn so that their prompts differ
from x_i (the script's shuffles can pick i itself, or a pair of the same prompt, whose responses are
on-prompt) and k ≠ j; an augmented pair whose two responses are the same text is left out and counted.
The paper also filters the augmented pairs with the reward model trained on the original data (keeping
the ones it does not already get right); the released script does not, and neither does rmguard: the
filter needs that trained model and a threshold the script does not fix.

The paper trains a pairwise preference model whose third answer is "same"; a point-wise Bradley–Terry
model takes a tie as BT with target ½ (:func:`rmguard.training.objectives.bt`, ``tie``).
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from rmguard.data.records import PreferencePair, Text
from rmguard.errors import DataError
from rmguard.registry import Registry

Augment = Callable[[list[PreferencePair], random.Random], tuple[list[PreferencePair], Counter[str]]]


@dataclass(frozen=True)
class PairAugmentation:
    """One entry of :data:`PAIR_AUGMENTATIONS`: ``augment(pairs, rng)`` gives the training pairs and the
    counts of what it made (logged by training); ``ties``: whether it makes tie pairs, so the objective
    must take them."""

    augment: Augment
    ties: bool = False


def prompt_key(prompt: Text) -> str:
    """A prompt as a comparable key: pairs with equal keys answer the same prompt."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def off_prompt_permutation(keys: list[str], rng: random.Random, avoid: list[int] | None = None) -> list[int]:
    """A random permutation σ of range(N) with keys[σ(i)] ≠ keys[i] for every i (and σ(i) ≠ avoid[i]).

    A uniform shuffle, then each position that breaks the rule is swapped with a random other position
    such that both hold (a later position may stay wrong: its turn comes). Deterministic given ``rng``.
    """
    n = len(keys)
    perm = list(range(n))
    rng.shuffle(perm)

    def ok(i: int) -> bool:
        return keys[perm[i]] != keys[i] and (avoid is None or perm[i] != avoid[i])

    for i in range(n):
        if ok(i):
            continue
        for j in itertools.chain((rng.randrange(n) for _ in range(32)), rng.sample(range(n), n)):
            perm[i], perm[j] = perm[j], perm[i]
            if ok(i) and (j > i or ok(j)):
                break
            perm[i], perm[j] = perm[j], perm[i]
        else:
            raise ValueError(f"no off-prompt partner for position {i}")
    return perm


def rrm_pairs(anchor: PreferencePair, first: PreferencePair, second: PreferencePair) -> list[PreferencePair]:
    """RRM's 14 augmented pairs of ``anchor`` (x_i, y_i^w, y_i^l) with the responses of two pairs of other
    prompts, all under x_i: 8 where each own response beats each off-prompt one, then the 6 ties among
    the four off-prompt responses. They keep the anchor's source and row; none has a margin."""
    own = (anchor.chosen, anchor.rejected)
    off = (first.chosen, first.rejected, second.chosen, second.rejected)
    wins = [replace(anchor, chosen=a, rejected=b, margin=None) for a in own for b in off]
    ties = [
        replace(anchor, chosen=a, rejected=b, margin=None, tie=True)
        for a, b in itertools.combinations(off, 2)
    ]
    return wins + ties


def _rrm(pairs: list[PreferencePair], rng: random.Random) -> tuple[list[PreferencePair], Counter[str]]:
    _check_rrm_input(pairs)
    keys = [prompt_key(pair.prompt) for pair in pairs]
    try:
        sigma1 = off_prompt_permutation(keys, rng)
        sigma2 = off_prompt_permutation(keys, rng, avoid=sigma1)
    except ValueError:
        raise DataError(
            pairs[0].source,
            "pair_augmentation rrm found no two pairs of other prompts for "
            "some pair: too many pairs share a prompt",
        ) from None
    out: list[PreferencePair] = []
    counts: Counter[str] = Counter(original=len(pairs))
    for i, pair in enumerate(pairs):
        out.append(pair)
        for new in rrm_pairs(pair, pairs[sigma1[i]], pairs[sigma2[i]]):
            if new.chosen == new.rejected:
                counts["left out: same text on both sides"] += 1
                continue
            counts["neutral (tie)" if new.tie else "non-contextual"] += 1
            out.append(new)
    return out, counts


def _check_rrm_input(pairs: list[PreferencePair]) -> None:
    """One line for data RRM cannot augment: chat and plain text mixed (an off-prompt response must be
    of its new prompt's kind), or a prompt shared by more than half of the pairs (then some pair has no
    pair of another prompt left to draw from)."""
    if not pairs:
        return
    source = pairs[0].source
    kinds = {pair.is_conversational for pair in pairs}
    if len(kinds) > 1:
        mixed = next(p for p in pairs if p.is_conversational != pairs[0].is_conversational)
        raise DataError(
            source,
            "pair_augmentation rrm needs all pairs in one form (chat messages or plain text); this pair "
            "is not in the first pair's form",
            row=mixed.row,
        )
    key, count = Counter(prompt_key(p.prompt) for p in pairs).most_common(1)[0]
    if len(pairs) < 3 or 2 * count > len(pairs):
        row = next(p.row for p in pairs if prompt_key(p.prompt) == key)
        raise DataError(
            source,
            f"pair_augmentation rrm draws responses of other prompts: {count} of {len(pairs)} pairs share "
            f"the prompt of line {row} (at most half may, and at least 3 pairs are needed)",
        )


def augment(
    pairs: list[PreferencePair], name: str = "none", seed: int = 0
) -> tuple[list[PreferencePair], Counter[str]]:
    """``pairs`` after the augmentation ``name`` (an entry of :data:`PAIR_AUGMENTATIONS`), drawn from
    ``random.Random(seed)``: the same seed gives the same pairs."""
    return PAIR_AUGMENTATIONS.lookup(name).augment(pairs, random.Random(seed))


def _none(pairs: list[PreferencePair], rng: random.Random) -> tuple[list[PreferencePair], Counter[str]]:
    return pairs, Counter(original=len(pairs))


# Training-pair augmentations (``pair_augmentation``): name → entry.
PAIR_AUGMENTATIONS: Registry[PairAugmentation] = Registry(
    "pair_augmentation",
    {"none": PairAugmentation(_none), "rrm": PairAugmentation(_rrm, ties=True)},
)
