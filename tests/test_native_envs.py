"""The torch-native classic-control envs against Gymnasium's, and their autoreset, seeding and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from configs import quiet_config

import fastdqn
from fastdqn.envs import NATIVE_ENVS, EnvError, TorchVectorEnv, make_envs

CUDA = pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")])
ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0"]


def time_limit(env: gym.Env[Any, Any]) -> Any:
    while not isinstance(env, gym.wrappers.TimeLimit):
        assert isinstance(env, gym.Wrapper)
        env = env.env
    return env


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_native_env_matches_gymnasium_step_for_step(env_id: str, device: str) -> None:
    """From the same state, step count and action, both give the same obs, reward, terminated, truncated.

    10,240 random env steps across resets; some episodes start a few steps before the time limit so
    that truncation (and truncation together with termination) is met too.
    """
    num_envs, vector_steps = 16, 640
    rng = np.random.default_rng(0)
    gym_envs = [gym.make(env_id) for _ in range(num_envs)]
    native = make_envs(env_id, num_envs, backend="torch", device=device)
    limit, spec = native.max_episode_steps, gym_envs[0].spec
    assert isinstance(native, TorchVectorEnv) and spec is not None and limit is not None and limit == spec.max_episode_steps

    def start(i: int) -> None:
        gym_envs[i].reset(seed=int(rng.integers(2**31)))
        time_limit(gym_envs[i])._elapsed_steps = int(rng.integers(limit - 5, limit)) if rng.random() < 0.2 else 0

    for i in range(num_envs):
        start(i)
    native.reset(seed=0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(vector_steps):
        state = torch.tensor(np.stack([np.asarray(e.unwrapped.state, dtype=np.float64) for e in gym_envs]), dtype=torch.float32)
        steps = torch.tensor([time_limit(e)._elapsed_steps for e in gym_envs], dtype=torch.int32)
        native.set_state(state, steps)
        actions = rng.integers(0, native.n_actions, num_envs)
        step = native.step(torch.from_numpy(actions))
        expected = [e.step(int(a)) for e, a in zip(gym_envs, actions, strict=True)]
        obs = np.stack([x[0] for x in expected])
        np.testing.assert_allclose(step.final_obs.cpu().numpy(), obs, rtol=1e-5, atol=2e-5)
        np.testing.assert_array_equal(step.reward.cpu().numpy(), np.array([x[1] for x in expected], dtype=np.float32))
        terminated, truncated = np.array([x[2] for x in expected]), np.array([x[3] for x in expected])
        np.testing.assert_array_equal(step.terminated.cpu().numpy(), terminated)
        np.testing.assert_array_equal(step.truncated.cpu().numpy(), truncated)
        ends["terminated"] += int(terminated.sum())
        ends["truncated"] += int(truncated.sum())
        for i in np.flatnonzero(terminated | truncated):
            start(int(i))
    needed = {"CartPole-v1": 10, "Acrobot-v1": 1, "MountainCar-v0": 0}[env_id]  # random actions seldom swing the Acrobot up
    assert ends["truncated"] > 10 and ends["terminated"] >= needed, ends


@pytest.mark.parametrize("device", ["cpu", CUDA])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_native_env_resets_in_the_same_step_and_keeps_the_final_obs(env_id: str, device: str) -> None:
    envs = make_envs(env_id, 64, backend="torch", device=device)
    assert isinstance(envs, TorchVectorEnv)
    envs.reset(seed=1)
    seen_end = False
    for _ in range(600):
        before = envs.state.clone()
        step = envs.step(torch.randint(0, envs.n_actions, (64,)))
        done = (step.terminated | step.truncated).cpu()
        kept = ~done
        assert torch.equal(step.next_obs.cpu()[kept], step.final_obs.cpu()[kept])
        if done.any():
            seen_end = True
            fresh = envs._observe(envs._initial(torch.zeros(64, envs.state_dim, device=envs.device)))  # lower corner of the reset box
            assert not torch.equal(step.next_obs.cpu()[done], step.final_obs.cpu()[done])
            assert (envs.steps.cpu()[done] == 0).all()
            assert torch.equal(envs._observe(envs.state).cpu()[done], step.next_obs.cpu()[done])
            if env_id == "CartPole-v1":  # a reset CartPole starts inside +-0.05, its final obs lies outside the bounds
                assert (step.next_obs.cpu()[done].abs() <= 0.05).all()
                ended = step.final_obs.cpu()[step.terminated.cpu()]
                assert ((ended[:, 0].abs() > 2.4) | (ended[:, 2].abs() > 12 * 2 * np.pi / 360)).all()
            del fresh
        del before
    assert seen_end


def test_each_native_env_draws_its_own_stream_whatever_the_others_do() -> None:
    """Env i's resets depend on (seed, i) alone: the first 4 envs of an 8-env CartPole follow a 4-env one."""
    small, large = make_envs("CartPole-v1", 4, backend="torch"), make_envs("CartPole-v1", 8, backend="torch")
    assert torch.equal(small.reset(seed=5), large.reset(seed=5)[:4])
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        actions = torch.randint(0, 2, (8,), generator=generator)
        a, b = small.step(actions[:4]), large.step(actions)
        assert torch.equal(a.next_obs, b.next_obs[:4]) and torch.equal(a.terminated, b.terminated[:4])
    other = make_envs("CartPole-v1", 4, backend="torch")
    assert not torch.equal(other.reset(seed=6), small.reset(seed=5))


def test_stacked_groups_of_native_envs_draw_what_single_runs_with_their_seeds_draw() -> None:
    """8 envs reset with seeds (5, 6) are two groups of 4: each follows a 4-env run with its own seed."""
    stacked = make_envs("CartPole-v1", 8, backend="torch")
    singles = [make_envs("CartPole-v1", 4, backend="torch") for _ in range(2)]
    obs = stacked.reset(seed=[5, 6])
    assert torch.equal(obs[:4], singles[0].reset(seed=5)) and torch.equal(obs[4:], singles[1].reset(seed=6))
    generator = torch.Generator().manual_seed(3)
    for _ in range(300):
        actions = torch.randint(0, 2, (8,), generator=generator)
        both = stacked.step(actions)
        for k, single in enumerate(singles):
            assert torch.equal(both.next_obs[4 * k : 4 * k + 4], single.step(actions[4 * k : 4 * k + 4]).next_obs)
    with pytest.raises(EnvError, match="equal groups"):
        stacked.reset(seed=[1, 2, 3])


def test_native_env_state_dict_round_trips() -> None:
    envs, twin = make_envs("Acrobot-v1", 8, backend="torch"), make_envs("Acrobot-v1", 8, backend="torch")
    envs.reset(seed=2)
    for _ in range(50):
        envs.step(torch.randint(0, 3, (8,)))
    state = envs.state_dict()
    assert state is not None
    twin.load_state_dict(state)
    actions = torch.randint(0, 3, (8,))
    assert torch.equal(envs.step(actions).next_obs, twin.step(actions).next_obs)
    with pytest.raises(EnvError, match="does not fit"):
        make_envs("CartPole-v1", 8, backend="torch").load_state_dict(state)


def test_torch_backend_refuses_an_env_it_has_no_native_version_of() -> None:
    with pytest.raises(EnvError, match="no native LunarLander-v3"):
        make_envs("LunarLander-v3", 4, backend="torch")
    assert set(NATIVE_ENVS) == set(ENV_IDS)


def test_native_truncation_rows_are_stored_with_their_final_obs_and_bootstrap(tmp_path: Path) -> None:
    """MountainCar under random actions always runs into its 200-step limit: every row is stored, each
    truncated episode's last row keeps its own final obs (not the reset one) and is not terminal."""
    num_envs, total = 4, 4 * 450
    cfg = quiet_config(tmp_path, env_id="MountainCar-v0", env_backend="torch", num_envs=num_envs, total_steps=total)
    run = fastdqn.train(cfg.replace(learning_starts=total - 1, buffer_capacity=total, batch_size=4))
    assert len(run.buffer) == total  # no row dropped: every step of a same-step env is a transition
    fields = {name: t[:total].numpy() for name, t in run.buffer.storage.fields.items()}
    obs, next_obs = fields["obs"].reshape(-1, num_envs, 2), fields["next_obs"].reshape(-1, num_envs, 2)
    assert not fields["terminated"].any()
    for env in range(num_envs):
        follows = np.all(next_obs[:-1, env] == obs[1:, env], axis=1)
        boundaries = np.flatnonzero(~follows)
        assert boundaries.tolist() == [199, 399]  # the two truncations, steps 200 and 400
        for row in boundaries:
            assert next_obs[row, env, 1] != 0.0 or next_obs[row, env, 0] != obs[row + 1, env, 0]  # the final obs, not a start
            assert -0.6 <= obs[row + 1, env, 0] <= -0.4 and obs[row + 1, env, 1] == 0.0  # the next episode starts afresh
    agent = run.agent
    with torch.no_grad():  # a target network whose every Q-value is 10: every stored row bootstraps
        agent.target_network.head.weight.zero_()
        agent.target_network.head.bias.fill_(10.0)
    rows = {k: torch.from_numpy(v) for k, v in fields.items()}
    targets = agent.td_target(rows["reward"], rows["next_obs"], rows["terminated"])
    assert torch.allclose(targets, torch.full_like(targets, -1.0 + cfg.gamma * 10.0))


def test_native_and_gymnasium_runs_store_the_same_kind_of_rows(tmp_path: Path) -> None:
    """The one loop serves both: same row counts per step (less Gymnasium's reset steps), same episode bookkeeping."""
    runs = {}
    for backend in ("torch", "gymnasium"):
        cfg = quiet_config(tmp_path / backend, env_backend=backend, num_envs=8, total_steps=2_000, learning_starts=500, log_every_steps=500)
        runs[backend] = fastdqn.train(cfg)
    native, host = runs["torch"], runs["gymnasium"]
    assert len(native.buffer) == 2_000 and len(host.buffer) < 2_000
    episodes = {b: (r.run_dir / "episodes.csv").read_text().splitlines()[1:] for b, r in runs.items()}
    for backend, lines in episodes.items():
        returns, lengths = zip(*[(float(line.split(",")[1]), int(line.split(",")[2])) for line in lines], strict=True)
        assert returns == tuple(float(n) for n in lengths), backend  # CartPole pays 1 a step
        assert len(lines) > 30, backend
    assert 2_000 - len(host.buffer) == len(episodes["gymnasium"]) - sum(  # one reset step per ended episode, except at the very end
        1 for line in episodes["gymnasium"] if int(line.split(",")[0]) == 2_000
    )


@pytest.mark.parametrize("n_step", [1, 3])
def test_same_seed_gives_the_same_curve_with_native_envs(tmp_path: Path, n_step: int) -> None:
    def run(name: str, seed: int) -> fastdqn.RunResult:
        cfg = quiet_config(tmp_path / name, env_backend="torch", seed=seed, n_step=n_step, total_steps=3_000, learning_starts=500)
        return fastdqn.train(cfg.replace(num_envs=8, log_every_steps=500, eval_every_steps=1_000, eval_episodes=4))

    first, second, other = run("a", 3), run("b", 3), run("c", 4)
    drop = ("wall_s", "sps")
    assert [{k: v for k, v in r.items() if k not in drop} for r in first.metrics] == [
        {k: v for k, v in r.items() if k not in drop} for r in second.metrics
    ]
    assert torch.equal(first.agent.online.data, second.agent.online.data)
    assert not torch.equal(first.agent.online.data, other.agent.online.data)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_native_env_reset_table_gives_the_draws_a_device_computes_each_step(env_id: str) -> None:
    """The CPU path (host branch, a table of reset draws) and the CUDA path (every draw computed in the step) agree."""
    table, direct = make_envs(env_id, 16, backend="torch"), make_envs(env_id, 16, backend="torch")
    assert isinstance(table, TorchVectorEnv) and isinstance(direct, TorchVectorEnv)
    direct.branch_on_host = False
    assert torch.equal(table.reset(seed=9), direct.reset(seed=9))
    generator = torch.Generator().manual_seed(1)
    for _ in range(1_500):  # past RESET_BLOCK resets of the busiest envs: the table is rebuilt on the way
        actions = torch.randint(0, table.n_actions, (16,), generator=generator)
        a, b = table.step(actions), direct.step(actions)
        assert torch.equal(a.next_obs, b.next_obs) and torch.equal(a.final_obs, b.final_obs)
    assert int(table.resets.max()) > (32 if env_id == "CartPole-v1" else 1)


@pytest.mark.slow
def test_cartpole_preset_solves_with_the_native_env_on_four_of_five_seeds(tmp_path: Path) -> None:
    solved = []
    for seed in range(1, 6):
        cfg = fastdqn.preset("cartpole-fast").replace(
            seed=seed, env_backend="torch", out_dir=str(tmp_path), save_plot=False, total_steps=60_000
        )
        run = fastdqn.train(cfg.replace(device="cpu", checkpoint_every_steps=0))
        if run.solved_at_step is not None:
            best = fastdqn.DQNAgent.load(run.run_dir / "best.pt")
            returns = fastdqn.evaluate(best, "CartPole-v1", episodes=20, seed=cfg.seed + 100_000, backend="torch")
            solved.append(sum(returns) / len(returns) >= 475)  # the solving evaluation, replayed from best.pt
        else:
            solved.append(False)
    assert sum(solved) >= 4, solved
