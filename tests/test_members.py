"""Stacked members: each member's act, update and replay equal a single agent's and a single buffer's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastdqn.agent import DQNAgent
from fastdqn.buffer import MemberBatch, ReplayBuffer
from fastdqn.config import Config
from fastdqn.envs import EnvSpaces
from fastdqn.members import MemberAgents
from fastdqn.per import PrioritizedSampler

SPACES = EnvSpaces((4,), torch.float32, 2)
CPU = torch.device("cpu")


def single_agent(cfg: Config) -> DQNAgent:
    torch.manual_seed(cfg.seed)
    return DQNAgent(cfg, SPACES, CPU)


def random_batches(k: int, batch_size: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "obs": torch.randn(batch_size, 4, generator=g),
            "action": torch.randint(0, 2, (batch_size,), generator=g),
            "reward": torch.randn(batch_size, generator=g),
            "next_obs": torch.randn(batch_size, 4, generator=g),
            "terminated": torch.rand(batch_size, generator=g) < 0.2,
        }
        for _ in range(k)
    ]


def stacked(batches: list[dict[str, torch.Tensor]]) -> MemberBatch:
    return MemberBatch(**{name: torch.stack([b[name] for b in batches]) for name in batches[0]})


@pytest.mark.parametrize(
    "changes",
    [
        [{}, {}, {}],  # a seed study: one learning rate, the fused Adam path
        [{"learning_rate": 1e-3, "gamma": 0.9}, {"learning_rate": 5e-3, "tau": 0.5}, {"max_grad_norm": 0.0, "grad_clip_value": 0.1}],
    ],
)
def test_members_update_as_single_agents_do(changes: list[dict[str, float]]) -> None:
    cfgs = [
        Config(**{"device": "cpu", "seed": s, "target_update_every": 2, "max_grad_norm": 1.0, **c})
        for s, c in zip((3, 5, 7), changes, strict=True)
    ]
    singles = [single_agent(c) for c in cfgs]
    members = MemberAgents(cfgs, SPACES, CPU)
    for k, agent in enumerate(singles):
        assert torch.equal(members.online[k], agent.online.data)  # the same initial weights
    for step in range(5):
        batches = random_batches(3, 32, step)
        stats = members.update(stacked(batches), np.ones(3, dtype=bool))
        for k, agent in enumerate(singles):
            single_stats = agent.update(batches[k])
            torch.testing.assert_close(stats["loss"][k], single_stats["loss"], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(stats["td_error"][k], single_stats["td_error"], rtol=1e-5, atol=1e-5)
    for k, agent in enumerate(singles):
        torch.testing.assert_close(members.online[k], agent.online.data, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(members.target[k], agent.target.data, rtol=1e-4, atol=1e-5)
        assert members.updates[k] == agent.updates


def test_inactive_members_keep_their_weights_and_adam_state_while_others_step() -> None:
    cfgs = [Config(device="cpu", seed=s) for s in (1, 2)]
    members = MemberAgents(cfgs, SPACES, CPU)
    single = single_agent(cfgs[1])
    before = members.online[0].clone()
    for step in range(3):
        batches = random_batches(2, 16, step)
        members.update(stacked(batches), np.array([False, True]))
        single.update(batches[1])
    assert torch.equal(members.online[0], before)
    assert float(members.optimizer.exp_avg[0].abs().sum()) == 0.0 and members.updates[0] == 0
    torch.testing.assert_close(members.online[1], single.online.data, rtol=1e-4, atol=1e-5)


def test_members_explore_with_the_coins_a_single_agent_draws() -> None:
    cfgs = [Config(device="cpu", seed=s) for s in (4, 9)]
    singles = [single_agent(c) for c in cfgs]
    members = MemberAgents(cfgs, SPACES, CPU)
    obs = torch.randn(2, 16, 4)
    for epsilons in ([1.0, 0.5], [0.0, 0.3], [0.2, 0.0]):
        actions = members.act(obs, epsilons)
        for k, agent in enumerate(singles):
            assert torch.equal(actions[k], agent.act(obs[k], epsilons[k]))


@pytest.mark.parametrize(("per", "capacity"), [(False, 10), (True, 10), (True, 40_000)])  # 40k: a two-level sum tree
def test_member_replay_fills_and_samples_as_single_buffers_do(per: bool, capacity: int) -> None:
    seeds = (11, 12, 13)
    cfgs = [Config(seed=s, per=per, buffer_capacity=capacity, batch_size=6) for s in seeds]
    replay = ReplayBuffer.for_members(cfgs, (4,), torch.float32, CPU)
    singles = [
        ReplayBuffer.create(capacity, (4,), torch.float32, CPU, seed=s, sampler=PrioritizedSampler(capacity, CPU, seed=s) if per else None)
        for s in seeds
    ]
    g = torch.Generator().manual_seed(0)
    for step in range(8):
        counts = [4, 4, 4] if step % 2 == 0 else [3, 0, 4]  # uneven: Gymnasium reset steps, n-step windows
        members = np.repeat(np.arange(3), counts)
        perm = np.random.default_rng(step).permutation(len(members))
        members = members[perm]  # rows of different members interleaved, each member's own in order
        rows = {
            "obs": torch.randn(len(members), 4, generator=g),
            "action": torch.randint(0, 2, (len(members),), generator=g),
            "reward": torch.randn(len(members), generator=g),
            "next_obs": torch.randn(len(members), 4, generator=g),
            "terminated": torch.rand(len(members), generator=g) < 0.5,
        }
        replay.extend(rows, None if step % 2 == 0 and step < 2 else members)
        for k, buffer in enumerate(singles):
            mine = torch.from_numpy(np.flatnonzero(members == k)) if not (step % 2 == 0 and step < 2) else torch.arange(4 * k, 4 * k + 4)
            buffer.extend({name: value[mine] for name, value in rows.items()})
    assert list(replay.sizes) == [len(b) for b in singles] and list(replay.writer.cursors) == [b.writer.cursor for b in singles]
    everyone = np.ones(3, dtype=bool)
    for _ in range(3):  # with PER, the priorities set after each sample steer the next
        batch = replay.sample_members(6, everyone)
        td_error = torch.randn(3, 6, generator=g)
        for k, buffer in enumerate(singles):
            single = buffer.sample_tensors(6)
            for name in ("obs", "action", "reward", "next_obs", "terminated", "weights", "storage_index"):
                mine, theirs = getattr(batch, name), getattr(single, name)
                assert (mine is None and theirs is None) if name == "weights" and not per else torch.equal(mine[k], theirs), name
            if per:
                buffer.update_priorities(single.storage_index, td_error[k].abs())
        replay.update_member_priorities(batch, td_error, everyone)
    some = np.array([True, False, True])  # a member that stopped learning draws nothing and keeps its tree
    batch = replay.sample_members(6, some)
    td_error = torch.randn(3, 6, generator=g)
    replay.update_member_priorities(batch, td_error, some)
    for k, buffer in enumerate(singles):
        if some[k]:
            single = buffer.sample_tensors(6)
            assert torch.equal(batch.action[k], single.action) and single.storage_index is not None
            buffer.update_priorities(single.storage_index, td_error[k].abs())
        if per:  # every level of every member's tree, bit for bit
            mine, theirs = replay.samplers[k], buffer.sampler
            assert isinstance(mine, PrioritizedSampler) and isinstance(theirs, PrioritizedSampler)
            assert all(torch.equal(a, b) for a, b in zip(mine.sums, theirs.sums, strict=True))
            assert torch.equal(mine.max_priority, theirs.max_priority)
