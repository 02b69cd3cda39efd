"""Every objective against a hand computation in plain Python floats, at several batch sizes."""

from __future__ import annotations

import math
import random

import pytest
import torch

from rmguard.training import objectives


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def batch(size: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    return [rng.uniform(-3, 3) for _ in range(size)], [rng.uniform(-3, 3) for _ in range(size)]


def tensors(*lists: list[float]) -> list[torch.Tensor]:
    return [torch.tensor(values, dtype=torch.float64) for values in lists]


SIZES = [1, 2, 5]


@pytest.mark.parametrize("size", SIZES)
def test_bt_and_margin(size):
    c, r = batch(size, size)
    m = [0.1 * (i + 1) for i in range(size)]
    expected = sum(-log_sigmoid(ci - ri) for ci, ri in zip(c, r)) / size
    expected_margin = sum(-log_sigmoid(ci - ri - mi) for ci, ri, mi in zip(c, r, m)) / size
    tc, tr, tm = tensors(c, r, m)
    assert objectives.bt(tc, tr).item() == pytest.approx(expected, rel=1e-12)
    assert objectives.bt(tc, tr, margin=tm).item() == pytest.approx(expected_margin, rel=1e-12)
    assert objectives.bt(tc, tr, margin=0.5).item() == pytest.approx(
        sum(-log_sigmoid(ci - ri - 0.5) for ci, ri in zip(c, r)) / size, rel=1e-12
    )


@pytest.mark.parametrize("size", SIZES)
def test_bsr_matches_both_forms(size):
    c, r = batch(size, 10 + size)
    lam = 1e-3
    bt = sum(-log_sigmoid(ci - ri) for ci, ri in zip(c, r)) / size
    rewards = c + r
    mean = sum(rewards) / (2 * size)
    as_reference_code = bt + lam * size * mean**2  # λ multiplied by the batch size B
    as_sum_form = bt + lam * sum(ci + ri for ci, ri in zip(c, r)) ** 2 / (4 * size)
    tc, tr = tensors(c, r)
    value = objectives.bsr(tc, tr).item()  # default λ = 1e-3
    assert value == pytest.approx(as_reference_code, rel=1e-12)
    assert value == pytest.approx(as_sum_form, rel=1e-12)


def test_bsr_penalty_over_given_batch_rewards():
    c, r = tensors([1.0, 2.0], [0.0, 1.0])
    gathered = torch.tensor([1.0, 2.0, 0.0, 1.0, 3.0, 3.0, 2.0, 4.0], dtype=torch.float64)  # 4 pairs
    expected = objectives.bt(c, r).item() + 0.5 * 4 * (16.0 / 8) ** 2
    assert objectives.bsr(c, r, bsr_lambda=0.5, batch_rewards=gathered).item() == pytest.approx(expected)


@pytest.mark.parametrize("size", SIZES)
def test_center(size):
    c, r = batch(size, 20 + size)
    bt = sum(-log_sigmoid(ci - ri) for ci, ri in zip(c, r)) / size
    expected = bt + 0.01 * sum((ci + ri) ** 2 for ci, ri in zip(c, r)) / size
    assert objectives.center(*tensors(c, r)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_hinge(size):
    c, r = batch(size, 30 + size)
    expected0 = sum(max(0.0, -(ci - ri)) for ci, ri in zip(c, r)) / size
    expected1 = sum(max(0.0, 1.0 - (ci - ri)) for ci, ri in zip(c, r)) / size
    tc, tr = tensors(c, r)
    assert objectives.hinge(tc, tr).item() == pytest.approx(expected0, abs=1e-12)
    assert objectives.hinge(tc, tr, margin=1.0).item() == pytest.approx(expected1, abs=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_bt_norm(size):
    c, r = batch(size, 40 + size)
    expected = sum(-log_sigmoid((ci - ri) / math.sqrt(ci**2 + ri**2)) for ci, ri in zip(c, r)) / size
    assert objectives.bt_norm(*tensors(c, r)).item() == pytest.approx(expected, rel=1e-12)


def test_bt_norm_of_zero_rewards_is_finite():
    zero = torch.zeros(3)
    assert objectives.bt_norm(zero, zero).item() == pytest.approx(math.log(2))


@pytest.mark.parametrize("size", SIZES)
def test_bt_dr(size):
    c, r = batch(size, 50 + size)
    expected = sum(-log_sigmoid(ci - ri) - log_sigmoid(ci) - log_sigmoid(-ri) for ci, ri in zip(c, r)) / size
    assert objectives.bt_dr(*tensors(c, r)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_label_smoothing(size):
    c, r = batch(size, 60 + size)
    eps = 0.1
    expected = (
        sum(-(1 - eps) * log_sigmoid(ci - ri) - eps * log_sigmoid(ri - ci) for ci, ri in zip(c, r)) / size
    )
    assert objectives.label_smoothing(*tensors(c, r)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("size", SIZES)
def test_grm_regularizers(size):
    sc, sr = batch(size, 70 + size)
    sc = [10 * v for v in sc]  # summed log-probs: larger magnitudes
    rc, rr = batch(size, 80 + size)
    beta = 0.1
    tc, tr, trc, trr = tensors(sc, sr, rc, rr)
    assert objectives.grm_sft(tc).item() == pytest.approx(
        sum(-log_sigmoid(beta * s) for s in sc) / size, rel=1e-12
    )
    assert objectives.grm_sft_plain(tc).item() == pytest.approx(-sum(sc) / size, rel=1e-12)
    dpo = sum(-log_sigmoid(beta * ((a - b) - (x - y))) for a, b, x, y in zip(sc, sr, rc, rr)) / size
    assert objectives.grm_dpo(tc, tr, trc, trr).item() == pytest.approx(dpo, rel=1e-12)
    noref = sum(-log_sigmoid(beta * (a - b)) for a, b in zip(sc, sr)) / size
    assert objectives.grm_dpo_noref(tc, tr).item() == pytest.approx(noref, rel=1e-12)


def test_grm_combine():
    assert objectives.grm_combine(torch.tensor(2.0), torch.tensor(10.0)).item() == pytest.approx(
        0.99 * 2 + 0.01 * 10
    )
    assert objectives.grm_combine(torch.tensor(2.0), torch.tensor(10.0), alpha=0.5).item() == pytest.approx(
        6.0
    )


def test_bsr_factor_is_the_configured_batch_size_on_a_short_last_batch():
    # Reference (LinkedIn-XFACT/RM-Robustness): λ is multiplied by the configured per-device batch size, so a
    # last batch of 3 pairs under batch size 4 still gets ×4: by hand, rewards 1, 2, 0 | 0, 1, 1 → mean 5/6.
    from rmguard.training.config import load_config
    from rmguard.training.loss import bsr_factor

    c, r = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([0.0, 1.0, 1.0])
    bt_value = sum(math.log1p(math.exp(-(a - b))) for a, b in zip([1, 2, 0], [0, 1, 1])) / 3
    fixed = objectives.bsr(c, r, bsr_lambda=0.1, batch_size=4).item()
    assert fixed == pytest.approx(bt_value + 0.1 * 4 * (5 / 6) ** 2)
    assert objectives.bsr(c, r, bsr_lambda=0.1).item() == pytest.approx(bt_value + 0.1 * 3 * (5 / 6) ** 2)
    config = load_config(None, {"train_file": "p", "objective": "bsr", "per_device_train_batch_size": 4})
    assert bsr_factor(config) == 4
    budget = load_config(None, {"train_file": "p", "objective": "bsr", "max_tokens_per_batch": 512})
    assert bsr_factor(budget) is None  # token-budget batches have no fixed size: the batch's own pairs


def test_a_partly_filled_margin_column_gets_the_configured_margin_where_empty():
    # Pair 0 has margin 1.0 in the data, pair 1 none: BT with margins (1.0, config's 0.5), by hand.
    from rmguard.training.collate import PaddedPairCollator
    from rmguard.training.config import load_config
    from rmguard.training.features import PairFeatures
    from rmguard.training.loss import RewardLoss
    from rmguard.training.modeling import RewardOutput

    features = [PairFeatures([1], [2], [3], margin=1.0), PairFeatures([1], [4], [5])]
    batch = PaddedPairCollator(pad_token_id=0)(features)
    rewards = torch.tensor([2.0, 1.0, 0.5, 1.5])  # chosen 2.0, 1.0; rejected 0.5, 1.5
    output = RewardOutput(rewards=rewards, hidden=torch.zeros(4, 1))
    expected = (-log_sigmoid(2.0 - 0.5 - 1.0) - log_sigmoid(1.0 - 1.5 - 0.5)) / 2
    config = load_config(None, {"train_file": "p", "objective": "bt", "margin": 0.5})
    assert RewardLoss(config)(output, batch)[0].item() == pytest.approx(expected, rel=1e-6)
    # No configured margin: the pair without one has none (0), as with no column at all.
    plain = load_config(None, {"train_file": "p", "objective": "bt"})
    expected_plain = (-log_sigmoid(2.0 - 0.5 - 1.0) - log_sigmoid(1.0 - 1.5)) / 2
    assert RewardLoss(plain)(output, batch)[0].item() == pytest.approx(expected_plain, rel=1e-6)


@pytest.mark.parametrize("name", ["bt", "bsr", "center", "hinge", "bt_norm", "bt_dr", "label_smoothing"])
def test_the_dispatch_table_applies_each_objective_with_its_settings(name):
    from rmguard.training.config import load_config
    from rmguard.training.loss import RewardLoss
    from rmguard.training.modeling import RewardOutput

    c, r = tensors([1.0, -0.5, 2.0], [0.0, 0.5, 2.5])
    settings = {
        "bsr": {"bsr_lambda": 0.3},
        "center": {"center_coef": 0.2},
        "label_smoothing": {"label_smoothing": 0.25},
    }
    config = load_config(None, {"train_file": "p", "objective": name, **settings.get(name, {})})
    direct = {
        "bt": lambda: objectives.bt(c, r),
        "bsr": lambda: objectives.bsr(c, r, 0.3, batch_size=config.per_device_train_batch_size),
        "center": lambda: objectives.center(c, r, 0.2),
        "hinge": lambda: objectives.hinge(c, r),
        "bt_norm": lambda: objectives.bt_norm(c, r),
        "bt_dr": lambda: objectives.bt_dr(c, r),
        "label_smoothing": lambda: objectives.label_smoothing(c, r, 0.25),
    }[name]()
    output = RewardOutput(rewards=torch.cat([c, r]), hidden=torch.zeros(6, 1))
    assert RewardLoss(config)(output, {})[0].item() == pytest.approx(direct.item(), rel=1e-12)


def test_pearson_by_hand_and_constant_input():
    x, y = tensors([1.0, 2.0, 4.0], [2.0, 1.0, 6.0])
    # x̄ = 7/3, ȳ = 3; Σ dx·dy = (−4/3)(−1) + (−1/3)(−2) + (5/3)(3) = 7; Σ dx² = 42/9; Σ dy² = 14
    assert objectives.pearson(x, y).item() == pytest.approx(7 / math.sqrt(42 / 9 * 14), rel=1e-12)
    assert objectives.pearson(x, torch.full_like(x, 5.0)).item() == 0.0


def test_odin_by_hand():
    """Two pairs (four responses): BT on Q + L, 1 − ρ(L, ℓ), |ρ(Q, ℓ)|, |cos(w_Q, w_L)|."""
    q_c, q_r, l_c, l_r = [0.5, -0.2], [0.1, 0.4], [1.0, 0.3], [0.2, 0.6]
    len_c, len_r = [30.0, 10.0], [20.0, 40.0]
    w_q, w_l = [0.6, 0.8], [1.0, 0.0]

    def rho(x, y):
        mx, my = sum(x) / len(x), sum(y) / len(y)
        num = sum((a - mx) * (b - my) for a, b in zip(x, y))
        return num / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))

    lengths = len_c + len_r
    bt = (-log_sigmoid((0.5 + 1.0) - (0.1 + 0.2)) - log_sigmoid((-0.2 + 0.3) - (0.4 + 0.6))) / 2
    length_term = 1 - rho(l_c + l_r, lengths)
    quality_term = abs(rho(q_c + q_r, lengths))
    ortho_term = abs(0.6 * 1.0 + 0.8 * 0.0) / (1.0 * 1.0)  # both unit norm: cos = 0.6
    args = tensors(q_c, q_r, l_c, l_r, len_c, len_r, w_q, w_l)
    assert objectives.odin(*args).item() == pytest.approx(
        bt + length_term + quality_term + ortho_term, rel=1e-12
    )
    weighted = objectives.odin(*args, length_coef=0.5, quality_coef=2.0, ortho_coef=0.1).item()
    assert weighted == pytest.approx(
        bt + 0.5 * length_term + 2.0 * quality_term + 0.1 * ortho_term, rel=1e-12
    )
    # the cosine ignores scale: a head that shrinks keeps its orthogonality term
    shrunk = tensors(q_c, q_r, l_c, l_r, len_c, len_r, [0.06, 0.08], [3.0, 0.0])
    assert objectives.odin(*shrunk).item() == pytest.approx(objectives.odin(*args).item(), rel=1e-12)
