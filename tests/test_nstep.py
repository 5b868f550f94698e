from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import toyenv
from configs import counter_config, quiet_config
from gymnasium.vector import AutoresetMode

import fastdqn
from fastdqn import ReplayBuffer
from fastdqn.nstep import NStepWriter

GAMMA = 0.5  # powers of 1/2 keep every expected return exact in float32


def step_rows(
    obs: list[float], action: list[int], reward: list[float], next_obs: list[float], terminated: list[bool]
) -> dict[str, torch.Tensor]:
    return {
        "obs": torch.tensor(obs).unsqueeze(1),
        "action": torch.tensor(action),
        "reward": torch.tensor(reward),
        "next_obs": torch.tensor(next_obs).unsqueeze(1),
        "terminated": torch.tensor(terminated),
    }


def as_lists(rows: dict[str, torch.Tensor]) -> dict[str, list[float]]:
    return {name: value.flatten().tolist() for name, value in rows.items()}


def test_nstep_writer_hand_computed_truncation_reset_and_terminal_two_envs(device: str) -> None:
    """Two interleaved envs, N = 3. obs encodes 10 * env + step so every row can be traced."""
    writer = NStepWriter(3, GAMMA, 2, (1,), torch.float32, device)
    no = np.array([False, False])
    # step 0: both envs run
    out = writer.push(step_rows([0, 10], [0, 1], [1, 10], [1, 11], [False, False]), no, no, no)
    assert len(out["action"]) == 0
    # step 1: env 0 is truncated after two steps: both its rows leave, bootstrapping from obs 2
    out = as_lists(writer.push(step_rows([1, 11], [1, 0], [2, 20], [2, 12], [False, False]), no, no, np.array([True, False])))
    assert out["obs"] == [0, 1]
    assert out["reward"] == [1 + 0.5 * 2, 2]
    assert out["next_obs"] == [2, 2]
    assert out["discount"] == [0.25, 0.5]
    assert out["terminated"] == [False, False]
    # step 2: env 0's autoreset step is no transition; env 1's first row has its three rewards
    out = as_lists(writer.push(step_rows([2, 12], [0, 0], [0, 30], [5, 13], [False, False]), np.array([True, False]), no, no))
    assert out["obs"] == [10]
    assert out["action"] == [1]
    assert out["reward"] == [10 + 0.5 * 20 + 0.25 * 30]
    assert out["next_obs"] == [13]
    assert out["discount"] == [0.125]
    # step 3: env 1 terminates (its window slot wraps around the N = 3 ring): all three rows leave, no bootstrap
    out = as_lists(writer.push(step_rows([5, 13], [1, 1], [1, 40], [6, 14], [False, True]), no, np.array([False, True]), no))
    assert out["obs"] == [11, 12, 13]
    assert out["reward"] == [20 + 0.5 * 30 + 0.25 * 40, 30 + 0.5 * 40, 40]
    assert out["next_obs"] == [14, 14, 14]
    assert out["discount"] == [0, 0, 0]
    assert out["terminated"] == [True, True, True]
    # step 4: env 0's new episode fills its window; its first row leaves once it has 3 steps
    writer.push(step_rows([6, 15], [0, 0], [2, 0], [7, 16], [False, False]), np.array([False, True]), no, no)
    out = as_lists(writer.push(step_rows([7, 16], [0, 0], [3, 50], [8, 17], [False, False]), no, no, no))
    assert out["obs"] == [5]
    assert out["reward"] == [1 + 0.5 * 2 + 0.25 * 3]
    assert out["next_obs"] == [8]


def test_nstep_writer_with_one_step_returns_the_one_step_rows() -> None:
    writer = NStepWriter(1, 0.9, 3, (1,), torch.float32, "cpu")
    rows = step_rows([0, 1, 2], [0, 1, 0], [1, 2, 3], [5, 6, 7], [False, True, False])
    out = writer.push(rows, np.array([False, False, True]), np.array([False, True, False]), np.array([False, False, False]))
    assert out["obs"].flatten().tolist() == [0, 1]
    assert out["reward"].tolist() == [1, 2]
    assert torch.allclose(out["discount"], torch.tensor([0.9, 0.0]))


def drive_counter(num_envs: int, vector_steps: int, n_step: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """Step the Counter vector env as `train` does (NEXT_STEP autoreset) and collect the n-step rows."""
    envs = gym.make_vec(
        "toyenv:Counter-v0", num_envs=num_envs, vectorization_mode="sync", vector_kwargs={"autoreset_mode": AutoresetMode.NEXT_STEP}
    )
    writer = NStepWriter(n_step, GAMMA, num_envs, (3,), torch.float32, "cpu")
    obs, _ = envs.reset(seed=seed)
    prev_done = np.zeros(num_envs, dtype=bool)
    emitted = []
    for step in range(vector_steps):
        action = np.full(num_envs, step % 2)
        next_obs, reward, terminated, truncated, _ = envs.step(action)
        rows = {
            "obs": torch.from_numpy(obs),
            "action": torch.from_numpy(action),
            "reward": torch.from_numpy(reward),
            "next_obs": torch.from_numpy(next_obs),
            "terminated": torch.from_numpy(terminated),
        }
        emitted.append(writer.push(rows, prev_done, terminated, truncated))
        prev_done = terminated | truncated
        obs = next_obs
    envs.close()
    return emitted


def expected_row(obs: np.ndarray, n_step: int) -> tuple[float, list[float], bool, float]:
    """(return, next_obs, terminated, discount) of the n-step row starting at Counter obs [episode, t, offset]."""
    env = toyenv.CounterEnv()
    episode, t, offset = (int(v) for v in obs)
    env.episode, env.offset = episode, offset
    end = env.terminal_step() or toyenv.TRUNCATE_AT
    k = min(n_step, end - t)
    ret = sum(GAMMA**j * (t + 1 + j) for j in range(k))  # reward t on the step into t
    terminated = t + k == env.terminal_step()
    return ret, [episode, t + k, offset], terminated, 0.0 if terminated else GAMMA**k


@pytest.mark.parametrize("n_step", [2, 3, 5])
def test_nstep_rows_match_counter_env_reference_with_interleaved_envs(n_step: int) -> None:
    emitted = drive_counter(num_envs=4, vector_steps=60, n_step=n_step, seed=5)
    rows = {name: torch.cat([out[name] for out in emitted]) for name in emitted[0]}
    assert len(rows["obs"]) > 100
    for i in range(len(rows["obs"])):
        ret, next_obs, terminated, discount = expected_row(rows["obs"][i].numpy(), n_step)
        assert rows["reward"][i].item() == pytest.approx(ret)
        assert rows["next_obs"][i].tolist() == next_obs  # same env, same episode: never spans two
        assert rows["terminated"][i].item() == terminated
        assert rows["discount"][i].item() == pytest.approx(discount)
    # every step of every finished episode starts exactly one row
    keys = sorted(tuple(int(v) for v in obs) for obs in rows["obs"])
    assert len(keys) == len(set(keys))
    for offset in range(4):
        env = toyenv.CounterEnv()
        env.offset = offset
        for episode in range(3):
            env.episode = episode
            end = env.terminal_step() or toyenv.TRUNCATE_AT
            assert all((episode, t, offset) in set(keys) for t in range(end))


def test_nstep_hand_computed_rows_of_counter_env() -> None:
    """Offset 0 (seed 5, env 0): episode 0 terminates at t = 2, episode 1 is truncated at t = 6, episode 2 terminates at t = 4."""
    emitted = drive_counter(num_envs=3, vector_steps=30, n_step=3, seed=5)
    rows = {name: torch.cat([out[name] for out in emitted]) for name in emitted[0]}
    by_start = {tuple(int(v) for v in rows["obs"][i].tolist()): i for i in range(len(rows["obs"]))}

    def row(episode: int, t: int) -> tuple[float, float, float, bool]:
        i = by_start[(episode, t, 0)]
        return rows["reward"][i].item(), rows["next_obs"][i][1].item(), rows["discount"][i].item(), bool(rows["terminated"][i])

    assert row(0, 0) == (2.0, 2.0, 0.0, True)  # 1 + 0.5 * 2, the terminal inside the window cuts it
    assert row(0, 1) == (2.0, 2.0, 0.0, True)
    assert row(1, 0) == (2.75, 3.0, 0.125, False)  # 1 + 0.5 * 2 + 0.25 * 3
    assert row(1, 3) == (8.0, 6.0, 0.125, False)  # 4 + 0.5 * 5 + 0.25 * 6, a full window ending at the truncation
    assert row(1, 4) == (8.0, 6.0, 0.25, False)  # 5 + 0.5 * 6, truncated inside the window: gamma^2
    assert row(1, 5) == (6.0, 6.0, 0.5, False)
    assert row(2, 1) == (4.5, 4.0, 0.0, True)  # 2 + 0.5 * 3 + 0.25 * 4 ending on the terminal
    assert row(2, 2) == (5.0, 4.0, 0.0, True)


def test_nstep_rows_wrap_the_replay_ring_in_order() -> None:
    emitted = drive_counter(num_envs=3, vector_steps=40, n_step=3, seed=1)
    buffer = ReplayBuffer.create(16, (3,), discount=True)
    for out in emitted:
        buffer.extend(out)
    everything = {name: torch.cat([out[name] for out in emitted]) for name in emitted[0]}
    total = len(everything["obs"])
    assert total > 2 * buffer.capacity and len(buffer) == buffer.capacity
    order = (buffer.writer.cursor + torch.arange(buffer.capacity)) % buffer.capacity  # oldest stored row first
    for name, stored in buffer.storage.fields.items():
        assert torch.equal(stored[order], everything[name][total - buffer.capacity :].to(stored.dtype)), name


def test_train_with_nstep_stores_discounts_and_targets_use_them(tmp_path: Path) -> None:
    cfg = counter_config(tmp_path, total_steps=150, gamma=GAMMA, n_step=3)
    run = fastdqn.train(cfg)
    n = len(run.buffer)
    rows = {name: t[:n] for name, t in run.buffer.storage.fields.items()}
    for i in range(n):
        ret, next_obs, _, discount = expected_row(rows["obs"][i].numpy(), 3)
        assert (rows["reward"][i].item(), rows["discount"][i].item()) == pytest.approx((ret, discount))
        assert rows["next_obs"][i].tolist() == next_obs
    agent = run.agent
    with torch.no_grad():  # a target network whose every Q-value is 10
        agent.target_network.head.weight.zero_()
        agent.target_network.head.bias.fill_(10.0)
    targets = agent.td_target(rows["reward"], rows["next_obs"], rows["terminated"], rows["discount"])
    assert torch.allclose(targets, rows["reward"] + rows["discount"] * 10.0)
    assert set(rows["discount"].unique().tolist()) == {0.0, 0.125, 0.25, 0.5}
    batch = run.buffer.sample_tensors(8)
    assert batch.discount is not None and batch.discount.shape == (8,)


def test_resume_refuses_a_different_n_step(tmp_path: Path) -> None:
    from fastdqn.config import ConfigError
    from fastdqn.train import TrainingInterrupted

    cfg = quiet_config(tmp_path, total_steps=1_200, learning_starts=400, num_envs=8, checkpoint_every_steps=800, run_name="run", n_step=3)
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(cfg, interrupt_at_step=800)
    # stored rows hold 3-step returns: reading them as one-step rows would be silently wrong
    with pytest.raises(ConfigError, match="n_step"):
        fastdqn.train(cfg.replace(n_step=1), resume=tmp_path / "run")
    resumed = fastdqn.train(cfg, resume=tmp_path / "run")
    assert resumed.env_steps == 1_200 and resumed.buffer.storage.fields["discount"].max() > 0
