"""The KV-cached sampler draws from the policy's own next-token distribution, row by row.

Checked on a tiny random-init llama against the plain forward (no cache, no padding, one row at a time) and
against Hugging Face's ``generate``: the per-step distributions agree within 1e-5 in fp32 through left
padding, a shared prompt and rows leaving the batch, and a row's tokens depend on its seed only.
"""

from __future__ import annotations

import pytest
import torch

from rmguard.overopt import generation
from rmguard.overopt.generation import SamplingConfig, draw, load_policy, next_token_probs, row_seed

from helpers import save_tiny_model

PROMPTS = [[1, 4, 50, 51], [1, 4, 52], [1, 4, 50, 51], [1, 4, 60, 61, 62, 63, 64], [1, 4, 52]]
# Many stop tokens, so rows finish at different steps and the batch is compacted on the way.
STOP = set(range(100, 108))


@pytest.fixture(scope="module")
def policy(tiny_llama):
    return load_policy(str(tiny_llama))


@pytest.fixture(scope="module")
def gemma2(tmp_path_factory):
    """Another cache layout: sliding-window layers, soft-capped logits."""
    return load_policy(str(save_tiny_model(tmp_path_factory.mktemp("gemma2") / "m", family="gemma2")))


def plain_probs(model, prefix, config):
    """The reference: the model's forward on the bare prefix, no cache, no padding."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prefix])).logits[0, -1]
    return next_token_probs(logits[None], config.temperature, config.top_p)[0]


def decode_recording(monkeypatch, model, prompts, seeds, config):
    """``decode``'s tokens and, per row, the distribution each of its tokens was drawn from."""
    seen: dict[int, list[torch.Tensor]] = {seed: [] for seed in seeds}
    real_draw = generation.draw

    def recording_draw(probs, generators):
        for row, g in zip(probs, generators):
            seen[g.initial_seed()].append(row.clone())
        return real_draw(probs, generators)

    monkeypatch.setattr(generation, "draw", recording_draw)
    with torch.no_grad():
        tokens = generation.decode(model, prompts, seeds, config, STOP, pad_id=0)
    return tokens, [seen[seed] for seed in seeds]


@pytest.mark.parametrize(
    "family,temperature,top_p", [("llama", 1.0, 1.0), ("llama", 0.7, 0.9), ("gemma2", 1.0, 1.0)]
)
def test_each_step_draws_from_the_plain_forward_distribution(
    monkeypatch, request, family, temperature, top_p
):
    model, _ = request.getfixturevalue({"llama": "policy", "gemma2": "gemma2"}[family])
    config = SamplingConfig(temperature=temperature, top_p=top_p, max_new_tokens=12)
    seeds = [row_seed(3, row) for row in range(len(PROMPTS))]
    tokens, probs = decode_recording(monkeypatch, model, PROMPTS, seeds, config)
    lengths = [len(t) for t in tokens]
    assert min(lengths) < 12 and max(lengths) == 12  # some rows left the batch early, some ran to the end
    for prompt, row, row_probs in zip(PROMPTS, tokens, probs):
        assert len(row_probs) == len(row)
        assert all(t not in STOP for t in row[:-1])
        for step, used in enumerate(row_probs):
            expected = plain_probs(model, prompt + row[:step], config)
            torch.testing.assert_close(used, expected, atol=1e-5, rtol=0)


def test_a_rows_tokens_depend_on_its_seed_only(policy):
    """Batched with others (shared and padded prompts, compaction) = alone = a one-row loop without cache."""
    model, _ = policy
    config = SamplingConfig(max_new_tokens=12)
    seeds = [row_seed(5, row) for row in range(len(PROMPTS))]
    with torch.no_grad():
        batched = generation.decode(model, PROMPTS, seeds, config, STOP, pad_id=0)
        alone = [
            generation.decode(model, [p], [s], config, STOP, pad_id=0)[0] for p, s in zip(PROMPTS, seeds)
        ]
    reference = []
    for prompt, seed in zip(PROMPTS, seeds):
        generator, row = torch.Generator().manual_seed(seed), []
        while len(row) < 12 and not (row and row[-1] in STOP):
            row.append(int(draw(plain_probs(model, prompt + row, config)[None], [generator])[0]))
        reference.append(row)
    assert batched == alone == reference
    assert batched[0] != batched[2]  # the same prompt, another seed: another draw


def test_hugging_face_generate_samples_the_same_distributions(policy):
    """Today's sampler (``model.generate`` with T, top-p, top-k 0) draws each token from the same
    distribution as :func:`next_token_probs` on the plain forward."""
    model, tokenizer = policy
    config = SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=6)
    ids, mask = generation.left_pad(PROMPTS, tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=config.temperature,
            top_p=config.top_p,
            top_k=0,
            max_new_tokens=config.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
    generated = out.sequences[:, ids.shape[1] :].tolist()
    for row, prompt in enumerate(PROMPTS):
        for step, scores in enumerate(out.scores):
            hf = scores[row].float().softmax(dim=-1)
            ours = plain_probs(model, prompt + generated[row][:step], config)
            torch.testing.assert_close(hf, ours, atol=1e-5, rtol=0)
            if generated[row][step] == tokenizer.eos_token_id:
                break  # the row is finished: HF pads it from here


def test_inversion_draws_match_the_distribution():
    """20,000 draws over 5 tokens from per-row generators: a chi-square test of the frequencies."""
    probs = torch.tensor([[0.5, 0.2, 0.15, 0.15, 0.0]])
    counts = torch.zeros(5)
    for seed in range(20_000):
        counts[draw(probs, [torch.Generator().manual_seed(row_seed(0, seed))])[0]] += 1
    assert counts[4] == 0  # probability 0 is never drawn
    expected = probs[0, :4] * 20_000
    chi2 = float(((counts[:4] - expected) ** 2 / expected).sum())
    assert chi2 < 16.27  # the 0.999 quantile of chi-square with 3 degrees of freedom


def test_top_p_matches_hugging_faces_warper():
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    logits = torch.randn(4, 30, generator=torch.Generator().manual_seed(1))
    hf = TopPLogitsWarper(0.8)(None, TemperatureLogitsWarper(0.7)(None, logits.clone())).softmax(dim=-1)
    torch.testing.assert_close(next_token_probs(logits, 0.7, 0.8), hf, atol=1e-6, rtol=0)
