from __future__ import annotations

import numpy as np
import pytest
import torch
import toyenv
from configs import counter_config

import fastdqn
from fastdqn.envs import EnvError, GymnasiumEnv, make_envs, valid_rows


def collect(num_envs: int = 3, total_steps: int = 120, **overrides: object) -> fastdqn.RunResult:
    """Run the real training loop on the counter env without updates, keeping every transition."""
    out_dir = overrides.pop("out_dir")
    cfg = counter_config(out_dir, num_envs=num_envs, total_steps=total_steps, learning_starts=total_steps - 1, batch_size=4, **overrides)
    return fastdqn.train(cfg)


def stored(run: fastdqn.RunResult) -> dict[str, np.ndarray]:
    n = len(run.buffer)
    return {name: t[:n].cpu().numpy() for name, t in run.buffer.storage.fields.items()}


def test_autoreset_step_is_never_stored(tmp_path: object) -> None:
    run = collect(out_dir=tmp_path)
    rows = stored(run)
    obs, next_obs = rows["obs"], rows["next_obs"]
    # a real transition stays inside one episode of one env and advances t by one;
    # NEXT_STEP's pseudo-transition would pair an episode's last obs with the next episode's first
    assert np.array_equal(next_obs[:, 0], obs[:, 0])
    assert np.array_equal(next_obs[:, 1], obs[:, 1] + 1)
    assert np.array_equal(next_obs[:, 2], obs[:, 2])
    # and every real transition is there: per env, each episode's steps 0..end-1 appear exactly once
    for offset in np.unique(obs[:, 2]):
        mine = obs[obs[:, 2] == offset]
        for episode in np.unique(mine[:, 0])[:-1]:  # the last episode may still be running
            steps = sorted(mine[mine[:, 0] == episode][:, 1].tolist())
            env = toyenv.CounterEnv()
            env.offset, env.episode = int(offset), int(episode)
            length = env.terminal_step() or toyenv.TRUNCATE_AT
            assert steps == list(range(length))


def test_terminated_is_stored_only_for_true_terminals_not_truncation(tmp_path: object) -> None:
    rows = stored(collect(out_dir=tmp_path))
    episode_plus_offset = (rows["obs"][:, 0] + rows["obs"][:, 2]).astype(int)
    next_t = rows["next_obs"][:, 1].astype(int)
    terminal_step = np.where(episode_plus_offset % 2 == 0, 2 + episode_plus_offset % 3, -1)
    assert np.array_equal(rows["terminated"], next_t == terminal_step)
    truncated_rows = (episode_plus_offset % 2 == 1) & (next_t == toyenv.TRUNCATE_AT)
    assert truncated_rows.any() and not rows["terminated"][truncated_rows].any()
    assert np.array_equal(rows["reward"], next_t.astype(np.float32))  # reward t on the step into t


def test_truncation_bootstraps_and_termination_does_not(tmp_path: object) -> None:
    run = collect(out_dir=tmp_path, gamma=0.5)
    agent = run.agent
    with torch.no_grad():  # a target network whose every Q-value is 10
        agent.target_network.head.weight.zero_()
        agent.target_network.head.bias.fill_(10.0)
    rows = {k: torch.from_numpy(v) for k, v in stored(run).items()}
    targets = agent.td_target(rows["reward"], rows["next_obs"], rows["terminated"])
    expected = rows["reward"] + 0.5 * 10.0 * (~rows["terminated"]).float()
    assert torch.allclose(targets, expected)
    truncated = (rows["next_obs"][:, 1] == toyenv.TRUNCATE_AT) & ~rows["terminated"]
    assert truncated.any() and torch.allclose(targets[truncated], rows["reward"][truncated] + 5.0)
    assert torch.allclose(targets[rows["terminated"]], rows["reward"][rows["terminated"]])


def test_episode_returns_are_tracked_per_env(tmp_path: object) -> None:
    run = collect(out_dir=tmp_path)
    lines = (run.run_dir / "episodes.csv").read_text().splitlines()[1:]
    for line in lines:
        _, ret, length = line.split(",")
        n = int(length)
        assert float(ret) == n * (n + 1) / 2  # rewards 1..n


def test_valid_rows_drops_envs_whose_previous_step_ended() -> None:
    assert valid_rows(np.array([False, False])) is None
    assert valid_rows(np.array([True, False, True, False])).tolist() == [1, 3]


@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("toyenv:ContinuousCounter-v0", "DQN needs a Discrete action space"),
        ("Pendulum-v1", "DQN needs a Discrete action space"),
        ("toyenv:DictCounter-v0", "needs a Box"),
        ("CartPol-v1", "Did you mean CartPole-v1"),
        ("nosuchmodule:Thing-v0", "nosuchmodule"),
    ],
)
def test_make_envs_rejects_what_dqn_cannot_use(env_id: str, message: str) -> None:
    with pytest.raises(EnvError, match=message):
        make_envs(env_id, 2)


def test_make_envs_uses_the_envs_own_vector_class_when_it_has_one() -> None:
    envs = make_envs("CartPole-v1", 4)
    assert isinstance(envs, GymnasiumEnv) and type(envs.envs).__name__ == "CartPoleVectorEnv"
    envs.close()
    envs = make_envs("toyenv:Counter-v0", 2)
    assert isinstance(envs, GymnasiumEnv) and type(envs.envs).__name__ == "SyncVectorEnv"
    envs.close()


def test_an_env_of_your_own_opts_in_to_exact_resume_with_fastdqn_plain_state() -> None:
    """An env class with `fastdqn_plain_state = True` is saved and restored as a classic-control env is; one without is not."""
    import framestack_env  # noqa: F401  (registers the envs)

    from fastdqn.envs.gymnasium import restore_envs, snapshot_envs

    assert snapshot_envs(make_envs("framestack_env:Frames-v0", 2, mode="sync").envs) is None  # no opt-in: fresh episodes on resume
    envs = make_envs("framestack_env:PlainFrames-v0", 2, mode="sync")
    assert isinstance(envs, GymnasiumEnv)
    envs.reset(seed=3)
    actions = torch.tensor([1, 0])
    for _ in range(5):
        envs.step(actions)
    saved = snapshot_envs(envs.envs)
    assert saved is not None
    ahead = [envs.step(actions).next_obs.clone() for _ in range(7)]  # crosses an episode end (TRUNCATE_AT)
    restore_envs(envs.envs, saved)
    again = [envs.step(actions).next_obs.clone() for _ in range(7)]
    assert all(torch.equal(a, b) for a, b in zip(ahead, again, strict=True))
