from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from configs import quiet_config
from gymnasium.vector import VectorEnv

from fastdqn import ReplayBuffer, train
from fastdqn.buffer import FIELDS
from fastdqn.config import preset
from fastdqn.envs import gymnasium_vector_env, valid_rows
from fastdqn.frames import FrameStorage
from fastdqn.networks import NatureCNN, build_q_network
from fastdqn.schedules import epsilon_at

needs_ale = pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="needs ale-py (pip install 'fastdqn[atari]')")


def test_build_q_network_picks_nature_cnn_for_84x84_frames() -> None:
    net = build_q_network("mlp", (4, 84, 84), 6, 64)
    assert isinstance(net, NatureCNN)
    assert [m.out_channels for m in net.convs if isinstance(m, torch.nn.Conv2d)] == [32, 64, 64]
    assert net.hidden.in_features == 3136 and net.hidden.out_features == 512
    assert not isinstance(build_q_network("mlp", (4,), 2, 64), NatureCNN)


def test_nature_cnn_scales_uint8_frames_on_the_device() -> None:
    torch.manual_seed(0)
    net = NatureCNN((4, 84, 84), 6)
    frames = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    q = net(frames)
    assert q.shape == (3, 6) and q.dtype == torch.float32
    by_hand = net.head(torch.relu(net.hidden(net.convs(frames.float() / 255.0))))
    assert torch.allclose(q, by_hand, atol=1e-6)


def test_nature_cnn_dueling_has_a_value_stream() -> None:
    net = build_q_network("dueling", (4, 84, 84), 4, 64)
    assert isinstance(net, NatureCNN) and net.value is not None
    assert net(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 4)


def test_atari_preset_has_the_nature_hyperparameters() -> None:
    cfg = preset("atari")
    assert (cfg.batch_size, cfg.buffer_capacity, cfg.learning_starts) == (32, 1_000_000, 50_000)
    assert cfg.target_update_every == 10_000 and cfg.gamma == 0.99 and cfg.loss == "huber"
    assert cfg.replay_ratio == 8.0  # one update of 32 per 4 env steps
    assert cfg.network == "nature_cnn" and cfg.env_id.startswith("ALE/")


def test_epsilon_piecewise_anneals_to_point_one_then_point_zero_one() -> None:
    cfg = preset("atari")
    assert epsilon_at(cfg, 0) == 1.0
    assert epsilon_at(cfg, 500_000) == pytest.approx(0.55)
    assert epsilon_at(cfg, 1_000_000) == pytest.approx(0.1)
    assert epsilon_at(cfg, 3_000_000) == pytest.approx(0.055)
    assert epsilon_at(cfg, 5_000_000) == pytest.approx(0.01)
    assert epsilon_at(cfg, 50_000_000) == pytest.approx(0.01)


@needs_ale
@pytest.mark.parametrize("mode", ["auto", "sync"])
def test_make_envs_gives_ale_ids_the_nature_preprocessing(mode: str) -> None:
    envs = gymnasium_vector_env("ALE/Pong-v5", 2, mode)
    try:
        assert envs.single_observation_space.shape == (4, 84, 84)
        assert envs.single_observation_space.dtype == np.uint8
        obs, _ = envs.reset(seed=0)
        next_obs, *_ = envs.step(np.zeros(2, dtype=np.int64))
        assert obs.shape == (2, 4, 84, 84)
        assert np.array_equal(next_obs[:, :3], obs[:, 1:])  # a rolling 4-frame stack
    finally:
        envs.close()


def _play_breakout(training: bool, mode: str, steps: int) -> tuple[list[int], list[float], list[float]]:
    """Under random play: lives left at each episode end, the reward of each step after an end, every reward."""
    envs = gymnasium_vector_env("ALE/Breakout-v5", 1, mode, training=training)
    lives_at_end, after_end, rewards = [], [], []
    try:
        envs.reset(seed=0)
        rng = np.random.default_rng(0)
        prev_done = False
        for _ in range(steps):
            _, reward, terminated, truncated, info = envs.step(rng.integers(0, 4, 1))
            if prev_done:
                after_end.append(float(reward[0]))
            elif terminated[0] or truncated[0]:
                lives_at_end.append(int(info["lives"][0]))
            rewards.append(float(reward[0]))
            prev_done = bool(terminated[0] or truncated[0])
    finally:
        envs.close()
    return lives_at_end, after_end, rewards


@needs_ale
@pytest.mark.parametrize("mode", ["auto", "sync"])
def test_atari_training_env_ends_episodes_at_life_loss_and_clips_rewards(mode: str) -> None:
    lives_at_end, after_end, rewards = _play_breakout(training=True, mode=mode, steps=400)
    assert sum(lives > 0 for lives in lives_at_end) >= 3  # random Breakout loses a life every ~25-40 steps
    assert after_end and all(reward == 0.0 for reward in after_end)  # the reset step pays nothing
    assert set(rewards) <= {-1.0, 0.0, 1.0}


@needs_ale
@pytest.mark.parametrize("mode", ["auto", "sync"])
def test_atari_eval_env_plays_whole_games(mode: str) -> None:
    lives_at_end, _, _ = _play_breakout(training=False, mode=mode, steps=600)
    assert lives_at_end and all(lives == 0 for lives in lives_at_end)  # only game over ends an episode


def _rollout_rows(envs: VectorEnv, num_envs: int, steps: int) -> list[dict[str, torch.Tensor]]:
    rows_seen = []
    obs, _ = envs.reset(seed=0)
    prev_done = np.zeros(num_envs, dtype=bool)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        actions = rng.integers(0, 4, num_envs)
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        rows = {
            "obs": torch.from_numpy(obs),
            "action": torch.from_numpy(actions),
            "reward": torch.from_numpy(np.asarray(rewards, dtype=np.float32)),
            "next_obs": torch.from_numpy(next_obs),
            "terminated": torch.from_numpy(terminated),
            "env": torch.arange(num_envs),
        }
        keep = valid_rows(prev_done)
        if keep is not None:
            rows = {name: value[torch.from_numpy(keep)] for name, value in rows.items()}
        rows_seen.append(rows)
        prev_done = terminated | truncated
        obs = next_obs
    return rows_seen


@needs_ale
@pytest.mark.parametrize("mode", ["auto", "sync"])
def test_frame_storage_rebuilds_breakout_stacks_across_life_losses(mode: str) -> None:
    envs = gymnasium_vector_env("ALE/Breakout-v5", 2, mode)
    try:
        all_rows = _rollout_rows(envs, 2, 300)
    finally:
        envs.close()
    storage = FrameStorage(256, (84, 84), 4, 2, "cpu")
    frames, reference = ReplayBuffer(storage), ReplayBuffer.create(256, (4, 84, 84), torch.uint8, "cpu")
    for rows in all_rows:
        # every stored row is a real one-step transition: the loop dropped each reset step
        assert torch.equal(rows["next_obs"][:, :3], rows["obs"][:, 1:])
        frames.extend(rows)
        reference.extend(rows)
    index = torch.arange(256)
    assert bool(storage.valid(index).all())
    got, want = storage.read(index), reference.storage.read(index)
    for name in FIELDS:
        assert torch.equal(got[name], want[name]), name
    assert storage.frames_per_row() < 1.15  # one frame per step, plus one or two per life


@needs_ale
def test_train_on_an_ale_id_uses_frames_and_the_cnn_whatever_the_preset(tmp_path: Path) -> None:
    cfg = quiet_config(
        tmp_path,
        env_id="ALE/Pong-v5",
        num_envs=2,
        total_steps=96,
        learning_starts=48,
        batch_size=8,
        gradient_steps=1,
        buffer_capacity=1_000,
    )
    result = train(cfg)
    assert isinstance(result.buffer.storage, FrameStorage)
    assert isinstance(result.agent.q_network, NatureCNN)
    assert result.agent.updates > 0
    batch = result.buffer.sample(4)
    assert batch["obs"].shape == (4, 4, 84, 84) and batch["obs"].dtype == torch.uint8


@needs_ale
def test_cli_train_atari_preset_reports_frames_per_second(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fastdqn.cli import app

    args = ["train", "--preset", "atari", "--num-envs", "2", "--total-steps", "64", "--learning-starts", "48"]
    args += ["--buffer-capacity", "500", "--eval-every-steps", "0", "--device", "cpu", "--torch-threads", "1"]
    args += ["--out", str(tmp_path), "--no-save-plot", "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "frames / s" in result.output and "ALE/Pong-v5" in result.output
