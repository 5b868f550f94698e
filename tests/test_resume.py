from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from configs import quiet_config

import fastdqn
from fastdqn.checkpoint import load_checkpoint
from fastdqn.resume import load_for_resume
from fastdqn.train import TrainingInterrupted

ROOT = Path(__file__).resolve().parent.parent


def config(tmp_path: Path, **overrides: object) -> fastdqn.Config:
    values: dict[str, object] = {"total_steps": 4_000, "learning_starts": 400, "num_envs": 8, "eval_every_steps": 1_000, "eval_episodes": 3}
    values |= {"log_every_steps": 400, "checkpoint_every_steps": 1_000, "run_name": "run", "seed": 11}
    return quiet_config(tmp_path, **{**values, **overrides})


def csv_rows(path: Path, drop: tuple[str, ...] = ("wall_s", "sps")) -> list[dict[str, str]]:
    with path.open() as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.mark.parametrize(
    ("env_id", "n_step", "backend"),
    [
        ("CartPole-v1", 1, "gymnasium"),
        ("Acrobot-v1", 1, "gymnasium"),
        ("CartPole-v1", 3, "gymnasium"),
        ("CartPole-v1", 3, "torch"),
        ("Acrobot-v1", 1, "torch"),
    ],
)
def test_interrupted_and_resumed_run_equals_the_uninterrupted_run(tmp_path: Path, env_id: str, n_step: int, backend: str) -> None:
    straight = fastdqn.train(config(tmp_path / "a", env_id=env_id, n_step=n_step, env_backend=backend))
    cfg = config(tmp_path / "b", env_id=env_id, n_step=n_step, env_backend=backend)
    with pytest.raises(TrainingInterrupted) as stopped:
        fastdqn.train(cfg, interrupt_at_step=1_800)
    assert stopped.value.checkpoint.name == "step-000000001800.pt"
    resumed = fastdqn.train(cfg, resume=tmp_path / "b" / "run")
    assert torch.equal(resumed.agent.online.data, straight.agent.online.data)
    assert torch.equal(resumed.agent.target.data, straight.agent.target.data)
    assert torch.equal(resumed.agent.optimizer.exp_avg_sq, straight.agent.optimizer.exp_avg_sq)
    for name, stored in straight.buffer.storage.fields.items():
        assert torch.equal(resumed.buffer.storage.fields[name], stored), name
    for name in ("metrics.csv", "episodes.csv"):
        assert csv_rows(tmp_path / "b" / "run" / name) == csv_rows(tmp_path / "a" / "run" / name), name
    assert resumed.eval_history == straight.eval_history


def test_resume_drops_metric_rows_written_after_the_checkpoint(tmp_path: Path) -> None:
    cfg = config(tmp_path, total_steps=3_000)
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(cfg, interrupt_at_step=1_000)
    run_dir = tmp_path / "run"
    with (run_dir / "metrics.csv").open("a") as f:  # as if the process died after logging past its checkpoint
        f.write("1400,99,1.0,1.0,5,1.0,1.0,0.1,0.1,0.5,,\n")
    fastdqn.train(cfg, resume=run_dir)
    steps = [int(row["env_steps"]) for row in csv_rows(run_dir / "metrics.csv")]
    assert steps == sorted(set(steps)) and 1400 not in steps and steps[-1] == 3_000


def test_checkpoints_keep_only_the_newest_and_hold_the_whole_run(tmp_path: Path) -> None:
    run = fastdqn.train(config(tmp_path, checkpoint_every_steps=504, checkpoint_keep=2))
    kept = sorted(p.name for p in (run.run_dir / "checkpoints").glob("*.pt"))
    assert kept == ["step-000000003528.pt", "step-000000004000.pt"]
    payload = load_checkpoint(run.run_dir / "checkpoints" / kept[-1])
    assert {"agent", "buffer", "env", "loop", "rng", "run", "metrics"} <= set(payload)
    assert payload["buffer"]["size"] == len(run.buffer)
    assert payload["loop"]["counters"][0] == 4_000


def test_no_save_buffer_leaves_the_buffer_out(tmp_path: Path) -> None:
    run = fastdqn.train(config(tmp_path, save_buffer=False, total_steps=1_000, eval_every_steps=0))
    payload = load_checkpoint(run.run_dir / "checkpoints" / "step-000000001000.pt")
    assert payload["buffer"] is None


def test_resume_refuses_a_checkpoint_from_other_settings(tmp_path: Path) -> None:
    cfg = config(tmp_path, total_steps=1_000, eval_every_steps=0)
    fastdqn.train(cfg)
    with pytest.raises(fastdqn.ConfigError, match="hidden_dim: checkpoint 64, now 32"):
        load_for_resume(cfg.replace(hidden_dim=32, total_steps=2_000), tmp_path / "run")
    with pytest.raises(fastdqn.ConfigError, match="already finished at 1,000 env steps"):
        load_for_resume(cfg, tmp_path / "run")


def start_training(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(ROOT / "cli.py"),
        "train",
        "--out",
        str(tmp_path),
        "--run-name",
        "run",
        "--device",
        "cpu",
        "--quiet",
        "--no-save-plot",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*command, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoints(run_dir: Path, count: int, process: subprocess.Popen[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(list((run_dir / "checkpoints").glob("step-*.pt"))) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_checkpoint_and_says_how_to_resume(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    process = start_training(
        tmp_path, "--total-steps", "10000000", "--checkpoint-every-steps", "2000", "--eval-every-steps", "0", "--stop-at-return", "none"
    )
    wait_for_checkpoints(tmp_path / "run", 1, process)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert f"{sig.name} at env step" in stderr and f"--resume {tmp_path / 'run'}" in stderr.replace("\n", "")
    assert "Traceback" not in stderr
    newest = sorted((tmp_path / "run" / "checkpoints").glob("step-*.pt"))[-1]
    assert load_checkpoint(newest)["loop"]["counters"][0] > 2000


def test_kill_9_mid_write_leaves_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    # a checkpoint every 2 vector steps, buffer included: the process is writing most of the time
    process = start_training(
        tmp_path,
        "--total-steps",
        "10000000",
        "--checkpoint-every-steps",
        "32",
        "--checkpoint-keep",
        "2",
        "--eval-every-steps",
        "0",
        "--stop-at-return",
        "none",
        "--learning-starts",
        "1000",
    )
    run_dir = tmp_path / "run"
    wait_for_checkpoints(run_dir, 2, process)
    time.sleep(1.5)  # let the buffer fill so each write takes a while
    process.kill()
    process.communicate()
    for path in (run_dir / "checkpoints").glob("step-*.pt"):
        assert load_checkpoint(path)["loop"]["counters"][0] > 0  # every complete name is a complete file
    fastdqn_cfg = fastdqn.Config.load(run_dir / "config.json")
    newest = sorted((run_dir / "checkpoints").glob("step-*.pt"))[-1]
    steps_at_kill = load_checkpoint(newest)["loop"]["counters"][0]
    resumed = fastdqn.train(fastdqn_cfg.replace(total_steps=steps_at_kill + 320), resume=run_dir)
    assert resumed.env_steps == steps_at_kill + 320
    assert not list((run_dir / "checkpoints").glob(".*.tmp"))
