from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from configs import counter_config, quiet_config

import fastdqn
from fastdqn import ReplayBuffer
from fastdqn.config import ConfigError
from fastdqn.per import PrioritizedSampler


def chi_square_999(df: int) -> float:
    """0.999 quantile of chi-square(df) by Wilson-Hilferty (27.88 at df = 9; the exact value is 27.877)."""
    z = 3.0902  # standard normal 0.999 quantile
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    expected = counts.sum() * probs
    return float(((counts - expected) ** 2 / expected).sum())


def filled(capacity: int, device: str, alpha: float = 1.0, fanout: int = 4, seed: int = 0, top_nodes: int = 4) -> PrioritizedSampler:
    """A sampler whose every row holds priority 1; a small `top_nodes` makes even small trees walk levels."""
    sampler = PrioritizedSampler(capacity, device, alpha=alpha, eps=1e-12, seed=seed, fanout=fanout, top_nodes=top_nodes)
    sampler.on_write(slice(0, capacity))
    return sampler


def draw_counts(sampler: PrioritizedSampler, size: int, draws: int, batch_size: int = 32) -> torch.Tensor:
    counts = torch.zeros(size, dtype=torch.float64)
    for _ in range(draws // batch_size):
        index, _ = sampler.sample(size, batch_size)
        counts += torch.bincount(index.cpu(), minlength=size)
    return counts


@pytest.mark.parametrize(("capacity", "fanout", "top_nodes"), [(10, 4, 4096), (10, 4, 2), (100, 2, 2), (300, 32, 4), (300, 4, 20)])
def test_prioritized_sampler_frequencies_match_priorities(device: str, capacity: int, fanout: int, top_nodes: int) -> None:
    sampler = filled(capacity, device, alpha=0.7, fanout=fanout, top_nodes=top_nodes)
    priorities = torch.arange(1, capacity + 1, dtype=torch.float64)
    sampler.update(torch.arange(capacity, device=device), priorities.to(device))
    probs = priorities**0.7 / (priorities**0.7).sum()
    counts = draw_counts(sampler, capacity, draws=40 * capacity)
    assert chi_square(counts, probs) < chi_square_999(capacity - 1)
    assert chi_square(counts, torch.full_like(probs, 1 / capacity)) > chi_square_999(capacity - 1)  # the test can fail


def test_prioritized_sampler_update_shifts_the_distribution(device: str) -> None:
    sampler = filled(10, device)
    before = draw_counts(sampler, 10, draws=4000)
    assert chi_square(before, torch.full((10,), 0.1, dtype=torch.float64)) < chi_square_999(9)  # all at the max priority: uniform
    sampler.update(torch.tensor([3, 7], device=device), torch.tensor([9.0, 0.0], device=device))
    after = draw_counts(sampler, 10, draws=4000)
    probs = torch.tensor([1, 1, 1, 9, 1, 1, 1, 1e-12, 1, 1], dtype=torch.float64)
    probs /= probs.sum()
    assert chi_square(after[probs > 0.01], probs[probs > 0.01] * after.sum() / after[probs > 0.01].sum()) < chi_square_999(8)
    assert after[3] / after.sum() == pytest.approx(9 / 17, abs=0.03)
    assert after[7] == 0  # priority |0| + eps is all but never drawn


def test_prioritized_sampler_importance_weights_hand_computed(device: str) -> None:
    # priorities 1, 2, 4, 8 with alpha 1: P = p / 15; w = (N P)^-beta / max over the batch of (N P_j)^-beta,
    # and a batch of 64 strata holds all four rows, so w = (1 / p)^beta
    sampler = filled(4, device, alpha=1.0)
    sampler.update(torch.arange(4, device=device), torch.tensor([1.0, 2.0, 4.0, 8.0], device=device))
    sampler.beta = 0.5
    index, weights = sampler.sample(4, 64)
    assert weights is not None and weights.dtype == torch.float32 and weights.device.type == torch.device(device).type
    expected = torch.tensor([1.0, 0.70710678, 0.5, 0.35355339], device=device)
    assert torch.allclose(weights, expected[index], atol=1e-6)
    assert set(index.tolist()) == {0, 1, 2, 3}
    # alpha 0.5 flattens the priorities first: w = (1 / sqrt(p))^beta, beta 1: 1, 0.7071, 0.5, 0.3536
    sampler = filled(4, device, alpha=0.5)
    sampler.update(torch.arange(4, device=device), torch.tensor([1.0, 2.0, 4.0, 8.0], device=device))
    index, weights = sampler.sample(4, 64)
    assert torch.allclose(weights, expected[index], atol=1e-6)
    # a batch without the smallest stored priority is normalised by its own largest weight
    sampler = filled(3, device, alpha=1.0)
    sampler.update(torch.arange(3, device=device), torch.tensor([1e-8, 4.0, 8.0], device=device))
    index, weights = sampler.sample(3, 3)  # strata [0, 4), [4, 8), [8, 12) of the mass 1e-8 + 4 + 8
    assert index.tolist() == [1, 2, 2]
    assert torch.allclose(weights, torch.tensor([1.0, 0.5, 0.5], device=device))  # (4 / p)^1, not (1e-8 / p)^1


def test_prioritized_sampler_new_rows_enter_at_max_priority(device: str) -> None:
    sampler = PrioritizedSampler(8, device, alpha=0.5, eps=1e-6, fanout=2)
    sampler.on_write(slice(0, 3))
    assert torch.allclose(sampler.leaves[:3], torch.ones(3, dtype=torch.float64, device=device))  # max starts at 1
    sampler.update(torch.tensor([0, 1], device=device), torch.tensor([0.5, 3.0], device=device))
    sampler.on_write(torch.tensor([3, 4], device=device))
    assert torch.allclose(sampler.leaves[3:5], torch.full((2,), (3.0 + 1e-6) ** 0.5, dtype=torch.float64, device=device))
    assert sampler.leaves[5:].sum() == 0


def test_prioritized_sampler_never_returns_unwritten_rows(device: str) -> None:
    sampler = PrioritizedSampler(1000, device, fanout=8, top_nodes=8)
    sampler.on_write(slice(0, 37))
    sampler.update(torch.tensor([36], device=device), torch.tensor([1e6], device=device))  # the mass sits at the edge
    for _ in range(50):
        index, _ = sampler.sample(37, 256)
        assert int(index.max()) <= 36


def test_prioritized_sampler_tree_matches_brute_force_after_random_updates(device: str) -> None:
    generator = torch.Generator().manual_seed(0)
    sampler = PrioritizedSampler(200, device, alpha=0.6, eps=1e-3, fanout=4, top_nodes=4)  # levels 200, 52, 16, 4
    sampler.on_write(slice(0, 30))
    for step in range(20):
        index = torch.randint(0, 30, (16,), generator=generator)  # duplicates included
        index[-1] = index[0]
        sampler.update(index.to(device), torch.rand(16, generator=generator).to(device) * 5)
        if step == 10:
            sampler.on_write(torch.arange(190, 211) % 200)
    leaves = sampler.sums[0].cpu()
    for below, above in zip(sampler.sums, sampler.sums[1:], strict=False):
        assert torch.allclose(above.cpu()[: len(below) // 4], below.cpu().view(-1, 4).sum(1))
    written = leaves[leaves > 0]
    assert len(written) == 30 + 10  # rows 190..199 are new, 0..10 were written already
    assert sampler.total.item() == pytest.approx(float(leaves.sum()))


def test_prioritized_sampler_duplicate_index_takes_larger_priority(device: str) -> None:
    sampler = filled(8, device, alpha=1.0)
    sampler.update(torch.tensor([2, 5, 2], device=device), torch.tensor([4.0, 1.0, 7.0], device=device))
    assert sampler.leaves[2].item() == pytest.approx(7.0)
    assert sampler.total.item() == pytest.approx(6 * 1.0 + 7.0 + 1.0)


def test_prioritized_sampler_same_seed_same_draws(device: str) -> None:
    def run() -> tuple[torch.Tensor, torch.Tensor]:
        sampler = filled(500, device, alpha=0.6, fanout=8, seed=3)
        indices, weights = [], []
        for _ in range(5):
            index, w = sampler.sample(500, 64)
            assert w is not None
            sampler.update(index, (index.double() % 7).to(device))
            indices.append(index)
            weights.append(w)
        return torch.cat(indices), torch.cat(weights)

    first, second = run(), run()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_prioritized_sampler_state_dict_round_trip(device: str) -> None:
    sampler = filled(40, device, alpha=0.6, fanout=4)
    sampler.update(torch.arange(40, device=device), torch.linspace(0, 3, 40, device=device))
    restored = PrioritizedSampler(40, device, alpha=0.6, eps=1e-12, fanout=4, top_nodes=4)
    restored.load_state_dict(sampler.state_dict())
    for mine, theirs in zip(sampler.sums, restored.sums, strict=True):
        assert torch.allclose(mine, theirs)
    assert torch.equal(sampler.sample(40, 16)[0], restored.sample(40, 16)[0])


def test_replay_buffer_with_prioritized_sampler_returns_weights_and_updates(device: str) -> None:
    buffer = ReplayBuffer.create(16, (3,), device=device, sampler=PrioritizedSampler(16, device, alpha=1.0, fanout=4))
    ids = torch.arange(20, device=device)
    rows = {
        "obs": ids.float().unsqueeze(1).repeat(1, 3),
        "action": ids % 2,
        "reward": ids.float(),
        "next_obs": ids.float().unsqueeze(1).repeat(1, 3),
    }
    rows["terminated"] = ids % 5 == 0
    buffer.extend({name: value[:10] for name, value in rows.items()})
    buffer.extend({name: value[10:] for name, value in rows.items()})  # wraps the ring
    batch = buffer.sample_tensors(8)
    assert batch.weights is not None and batch.storage_index is not None
    assert torch.equal(batch.obs[:, 0], buffer.storage.fields["obs"][batch.storage_index, 0])
    buffer.update_priorities(batch.storage_index, torch.zeros(8, device=device))
    sampler = buffer.sampler
    assert isinstance(sampler, PrioritizedSampler)
    assert bool((sampler.leaves[batch.storage_index] < 1e-5).all())
    assert buffer.sample(8).get("weights") is not None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: PrioritizedSampler(10, "cpu", alpha=-1.0), "per_alpha"),
        (lambda: PrioritizedSampler(10, "cpu", eps=0.0), "per_eps"),
        (lambda: PrioritizedSampler(10, "cpu", fanout=3), "power of two"),
        (lambda: fastdqn.Config(n_step=0), "n_step"),
        (lambda: fastdqn.Config(per_eps=0.0), "per_eps"),
        (lambda: fastdqn.Config(per_beta_start=1.5), "per_beta_start"),
    ],
)
def test_prioritized_settings_reject_bad_values(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_train_with_per_updates_priorities_and_anneals_beta(tmp_path: Path) -> None:
    cfg = counter_config(tmp_path, total_steps=300, n_step=3, per=True, per_beta_start=0.4)
    run = fastdqn.train(cfg)
    sampler = run.buffer.sampler
    assert isinstance(sampler, PrioritizedSampler)
    leaves = sampler.leaves[: len(run.buffer)]
    assert len(leaves.unique()) > 10  # TD errors, not one shared max priority
    assert sampler.max_priority.item() >= leaves.max().item() ** (1 / cfg.per_alpha) - 1e-6
    assert 0.4 < sampler.beta <= 1.0


def test_train_with_per_resumes_exactly(tmp_path: Path) -> None:
    from fastdqn.train import TrainingInterrupted

    def cfg(out: Path) -> fastdqn.Config:
        return quiet_config(out, total_steps=1_600, learning_starts=400, num_envs=8, checkpoint_every_steps=800, run_name="run", per=True)

    straight = fastdqn.train(cfg(tmp_path / "a"))
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(cfg(tmp_path / "b"), interrupt_at_step=800)
    resumed = fastdqn.train(cfg(tmp_path / "b"), resume=tmp_path / "b" / "run")
    assert torch.equal(resumed.agent.online.data, straight.agent.online.data)
    straight_sampler, resumed_sampler = straight.buffer.sampler, resumed.buffer.sampler
    assert isinstance(straight_sampler, PrioritizedSampler) and isinstance(resumed_sampler, PrioritizedSampler)
    for mine, theirs in zip(resumed_sampler.sums, straight_sampler.sums, strict=True):
        assert torch.equal(mine, theirs)


def test_per_works_over_frame_storage_and_n_step_is_refused_there(tmp_path: Path) -> None:
    cfg = counter_config(tmp_path, env_id="toyenv:ImageCounter-v0", replay_storage="frames", total_steps=300, buffer_capacity=500, per=True)
    run = fastdqn.train(cfg)
    sampler = run.buffer.sampler
    assert isinstance(sampler, PrioritizedSampler)
    assert len(sampler.leaves[: len(run.buffer)].unique()) > 10
    with pytest.raises(ConfigError, match="n_step=3 needs --replay-storage tensor"):
        fastdqn.train(cfg.replace(n_step=3, run_name="n3"))
