"""`fastdqn eval RUN --video DIR`: one mp4 per greedy episode, read back frame by frame with imageio."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastdqn.agent import DQNAgent
from fastdqn.cli import app
from fastdqn.config import Config
from fastdqn.envs import EnvSpaces

runner = CliRunner()
# a short run: its greedy episodes are short too, and encoding their 600x400 frames is most of the test's time
SMALL = ["--device", "cpu", "--total-steps", "600", "--learning-starts", "300", "--num-envs", "4", "--eval-every-steps", "0"]
SMALL += ["--quiet", "--no-save-plot", "--stop-at-return", "none"]


def read_frames(path: Path) -> list[np.ndarray]:
    with imageio.get_reader(path) as reader:
        return [np.asarray(frame) for frame in reader]


def test_eval_video_writes_one_mp4_per_episode_with_a_frame_per_step(tmp_path: Path) -> None:
    train = runner.invoke(app, ["train", "--out", str(tmp_path), "--run-name", "cart", *SMALL])
    assert train.exit_code == 0, train.output
    result = runner.invoke(app, ["eval", str(tmp_path / "cart"), "--video", str(tmp_path / "videos"), "-n", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["videos"]) == 2 and report["returns"] == [video["return"] for video in report["videos"]]
    for i, video in enumerate(report["videos"]):
        assert video["path"] == str(tmp_path / "videos" / f"cart-episode-{i}.mp4")
        frames = read_frames(Path(video["path"]))
        assert video["steps"] == video["return"] > 0  # CartPole pays 1 per step
        assert len(frames) == video["steps"] + 1  # the frame after the reset, then one per step
        assert frames[0].shape == (400, 600, 3)  # CartPole's own render, not the agent's 4 numbers
    text = runner.invoke(app, ["eval", str(tmp_path / "cart"), "--video", str(tmp_path / "again")])
    assert text.exit_code == 0, text.output
    one_line = " ".join(text.output.split())
    assert f"{tmp_path / 'again' / 'cart-episode-0.mp4'}: return" in one_line and "1 greedy episodes" in one_line
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["cart-episode-0.mp4"]  # --video records one episode by default


def test_eval_video_of_an_atari_agent_records_raw_game_frames(tmp_path: Path) -> None:
    pytest.importorskip("ale_py")
    cfg = Config(env_id="ALE/Pong-v5", network="nature_cnn", device="cpu")
    DQNAgent(cfg, EnvSpaces((4, 84, 84), torch.uint8, 6)).save(tmp_path / "pong.pt")
    args = ["eval", str(tmp_path / "pong.pt"), "--video", str(tmp_path / "videos"), "--video-max-steps", "25", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (video,) = json.loads(result.output)["videos"]
    assert (video["steps"], video["cut"]) == (25, True)
    frames = read_frames(Path(video["path"]))
    assert frames[0].shape == (210, 160, 3)  # the console's colour screen, not the 84x84 grayscale stack
    assert 1 + 4 * 25 <= len(frames) <= 1 + 30 + 4 * 25  # every emulator frame: 4 per agent step, plus up to 30 no-op starts


def test_eval_video_without_moviepy_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moviepy", None)
    DQNAgent(Config(device="cpu"), EnvSpaces((4,), torch.float32, 2)).save(tmp_path / "cart.pt")
    result = runner.invoke(app, ["eval", str(tmp_path / "cart.pt"), "--video", str(tmp_path / "videos")])
    assert result.exit_code == 2
    assert 'pip install -e ".[video]"' in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "videos").exists()
