"""RRM's augmentation (Liu et al. 2024): the 14 pairs per pair, checked pair by pair, and its bad inputs."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest

from rmguard.data.augmentation import PAIR_AUGMENTATIONS, augment, off_prompt_permutation, rrm_pairs
from rmguard.data.records import PreferencePair
from rmguard.errors import DataError


def pairs_of(prompts: list[str]) -> list[PreferencePair]:
    return [PreferencePair(p, f"w{i}", f"l{i}", None, "d.jsonl", i + 1) for i, p in enumerate(prompts)]


def test_rrm_pairs_of_one_anchor_are_the_papers_fourteen():
    anchor = PreferencePair("x0", "w0", "l0", 0.5, "d.jsonl", 1)
    j, k = PreferencePair("x1", "w1", "l1"), PreferencePair("x2", "w2", "l2")
    made = rrm_pairs(anchor, j, k)
    wins = [(p.chosen, p.rejected) for p in made if not p.tie]
    ties = [(p.chosen, p.rejected) for p in made if p.tie]
    assert wins == [
        ("w0", "w1"), ("w0", "l1"), ("w0", "w2"), ("w0", "l2"),
        ("l0", "w1"), ("l0", "l1"), ("l0", "w2"), ("l0", "l2"),
    ]  # fmt: skip
    assert ties == [("w1", "l1"), ("w1", "w2"), ("w1", "l2"), ("l1", "w2"), ("l1", "l2"), ("w2", "l2")]
    assert [p.tie for p in made] == [False] * 8 + [True] * 6
    assert {(p.prompt, p.margin, p.source, p.row) for p in made} == {("x0", None, "d.jsonl", 1)}


def test_rrm_keeps_each_pair_then_its_fourteen_drawn_from_two_permutations():
    pairs = pairs_of([f"x{i}" for i in range(6)])
    out, counts = augment(pairs, "rrm", seed=3)
    assert len(out) == 6 * 15
    assert counts == Counter({"original": 6, "non-contextual": 48, "neutral (tie)": 36})
    firsts, seconds = [], []
    for i, pair in enumerate(pairs):
        block = out[15 * i : 15 * i + 15]
        assert block[0] is pair
        # the off-prompt partners, read back from the first win's and the third win's rejected response
        j, k = int(block[1].rejected[1:]), int(block[3].rejected[1:])
        assert block[1:15] == rrm_pairs(pair, pairs[j], pairs[k])
        assert j != i and k != i and j != k
        firsts.append(j)
        seconds.append(k)
    assert sorted(firsts) == sorted(seconds) == list(range(6))  # each pair lends its responses twice
    assert augment(pairs, "rrm", seed=3)[0] == out
    assert augment(pairs, "rrm", seed=4)[0] != out


@pytest.mark.parametrize("seed", range(20))
def test_partners_never_share_the_anchors_prompt(seed):
    # UltraFeedback's all_pairs gives several pairs per prompt: their responses are on-prompt for each other
    keys = [f"x{i // 3}" for i in range(30)]
    first = off_prompt_permutation(keys, random.Random(seed))
    second = off_prompt_permutation(keys, random.Random(seed + 100), avoid=first)
    for perm in (first, second):
        assert sorted(perm) == list(range(30))
        assert all(keys[perm[i]] != keys[i] for i in range(30))
    assert all(a != b for a, b in zip(first, second))


def test_chat_prompts_are_compared_by_their_messages():
    pairs = [
        PreferencePair([{"role": "user", "content": f"q{i % 4}"}], [{"role": "assistant", "content": f"w{i}"}],
                       [{"role": "assistant", "content": f"l{i}"}], None, "d.jsonl", i + 1)
        for i in range(8)
    ]  # fmt: skip
    out, _ = augment(pairs, "rrm", seed=0)
    for i in range(8):
        partners = {int(p.rejected[0]["content"][1:]) for p in out[15 * i + 1 : 15 * i + 9]}
        assert len(partners) == 2 and all(j % 4 != i % 4 for j in partners)


def test_a_pair_with_the_same_text_on_both_sides_is_left_out_and_counted():
    pairs = [
        PreferencePair("x0", "same", "l0", None, "d.jsonl", 1),
        PreferencePair("x1", "w1", "same", None, "d.jsonl", 2),
        PreferencePair("x2", "w2", "same", None, "d.jsonl", 3),
    ]
    out, counts = augment(pairs, "rrm", seed=0)
    assert all(p.chosen != p.rejected for p in out)
    # every anchor has "same" and so do both its partners: its own "same" against each partner's (2 wins)
    # and the two partners' "same" against each other (1 tie), for each of the 3 anchors
    assert counts["left out: same text on both sides"] == 9
    assert len(out) == 3 * 15 - 9


def test_half_the_pairs_may_share_a_prompt():
    pairs = pairs_of(["x", "x", "y", "z"])
    assert len(augment(pairs, "rrm", seed=0)[0]) == 4 * 15


@pytest.mark.parametrize(
    "pairs, message",
    [
        (
            pairs_of(["x", "x", "x", "y", "z"]),
            "d.jsonl: pair_augmentation rrm draws responses of other prompts: 3 of 5 pairs share the prompt of "
            "line 1 (at most half may, and at least 3 pairs are needed)",
        ),
        (
            pairs_of(["x", "y"]),
            "d.jsonl: pair_augmentation rrm draws responses of other prompts: 1 of 2 pairs share the prompt of "
            "line 1 (at most half may, and at least 3 pairs are needed)",
        ),
        (
            [*pairs_of(["x", "y"]), PreferencePair([], [{"role": "assistant", "content": "a"}],
                                                   [{"role": "assistant", "content": "b"}], None, "d.jsonl", 3)],
            "d.jsonl, line 3: pair_augmentation rrm needs all pairs in one form (chat messages or plain text); "
            "this pair is not in the first pair's form",
        ),
    ],
)  # fmt: skip
def test_data_rrm_cannot_augment_is_one_line(pairs, message):
    with pytest.raises(DataError) as error:
        augment(pairs, "rrm", seed=0)
    assert str(error.value) == message


def test_none_is_the_identity_and_only_rrm_makes_ties():
    pairs = pairs_of(["a", "b", "c"])
    assert augment(pairs)[0] is pairs
    assert {name: entry.ties for name, entry in PAIR_AUGMENTATIONS.items()} == {"none": False, "rrm": True}
    assert not any(itertools.chain(p.tie for p in augment(pairs)[0]))
