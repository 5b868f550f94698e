"""Hostile situations around resume and non-finite values: each one gives one line and an exit code,
and leaves every file that existed byte-identical (sha256) unless the case is a repair, whose change
is checked exactly (a torn CSV tail gone, a damaged checkpoint kept aside under a new name).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nonfinite_envs  # noqa: F401  (registers the misbehaving envs)
import numpy as np
import pytest
import torch
from configs import counter_config
from typer.testing import CliRunner

import fastdqn
from fastdqn.agent import DQNAgent
from fastdqn.checkpoint import load_checkpoint
from fastdqn.cli import app
from fastdqn.config import FastDQNError
from fastdqn.evaluate import Evaluation, Evaluator
from fastdqn.finite import NonFiniteEnvOutput, NonFiniteWeights, check_env_arrays, require_finite_weights
from fastdqn.group import train_many
from fastdqn.member_envs import MemberEvaluator
from fastdqn.members import MemberAgents
from fastdqn.train import TrainingFailed, TrainingInterrupted

runner = CliRunner()
STEPS = {"total_steps": 600, "log_every_steps": 30, "checkpoint_every_steps": 90, "checkpoint_keep": 3}
NEWEST, OLDER = "step-000000000270.pt", "step-000000000180.pt"


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(*args: str) -> tuple[int, list[str]]:
    """Exit code and the non-empty output lines, less the one-line note that an env id has no preset
    of its own; an exception that escaped the CLI fails the test."""
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result.exit_code, [line for line in lines if not line.startswith("note: no preset for ")]


def resume_cli(folder: Path) -> tuple[int, list[str]]:
    return run_cli("train", "--resume", str(folder), "--quiet")


def assert_resume_refused_unchanged(folder: Path, damage: Callable[[Path], None], message: str) -> None:
    """Damage a run or group folder; `--resume` must exit 2 with one line holding `message`, and change no file."""
    damage(folder)
    before = digest(folder)
    code, lines = resume_cli(folder)
    assert code == 2
    assert len(lines) == 1 and message in lines[0], lines
    assert digest(folder) == before


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run stopped at env step 270 with checkpoints at 90, 180 and 270."""
    out = tmp_path_factory.mktemp("base")
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(counter_config(out, run_name="run", **STEPS), interrupt_at_step=270)
    assert sorted(p.name for p in (out / "run" / "checkpoints").iterdir()) == ["step-000000000090.pt", OLDER, NEWEST]
    return out / "run"


@pytest.fixture(scope="module")
def base_group(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A group of two seeds stopped at env step 270."""
    out = tmp_path_factory.mktemp("base")
    with pytest.raises(TrainingInterrupted):
        train_many([counter_config(out, run_name="group", seed=seed, **STEPS) for seed in (1, 2)], interrupt_at_step=270)
    return out / "group"


STALE = "checkpoints/.step-000000000360.pt.x1y2.tmp"
"""What a write killed mid-way leaves: removed by a resume only once every file has passed its checks."""


@pytest.fixture
def run(base_run: Path, tmp_path: Path) -> Path:
    folder = Path(shutil.copytree(base_run, tmp_path / "run"))
    (folder / STALE).write_bytes(b"half a checkpoint")
    return folder


@pytest.fixture
def group(base_group: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(base_group, tmp_path / "group"))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit_checkpoint(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def edit_json(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    values = json.loads(path.read_text())
    edit(values)
    path.write_text(json.dumps(values))


def wrong_shape(payload: dict[str, Any]) -> None:
    name = next(iter(payload["agent"]["q_network"]))
    payload["agent"]["q_network"][name] = torch.zeros(7, 5)


def damage_metrics_row(run_dir: Path) -> None:
    lines = (run_dir / "metrics.csv").read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",", ",x", 1)
    (run_dir / "metrics.csv").write_text("".join(lines))


def rewrite(name: str, text: str | bytes) -> Callable[[Path], None]:
    def damage(run_dir: Path) -> None:
        path = run_dir / name
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)

    return damage


REFUSED_RUN: list[tuple[str, Callable[[Path], None], str]] = [
    ("config.json not JSON", rewrite("config.json", "{not json"), "config.json is not a valid fastdqn config"),
    ("config.json not UTF-8", rewrite("config.json", b"\xff\xfe{}"), "config.json is not a valid fastdqn config"),
    (
        "config.json text for a number",
        lambda d: edit_json(d / "config.json", lambda v: v.update(num_envs="three")),
        "num_envs='three'",
    ),
    ("config.json unknown field", lambda d: edit_json(d / "config.json", lambda v: v.update(speed=9)), "unknown config fields"),
    ("config.json missing", lambda d: (d / "config.json").unlink(), "no config.json there"),
    (
        "every checkpoint truncated",
        lambda d: [truncate(p) for p in (d / "checkpoints").glob("*.pt")] and None,
        "no checkpoint there can be used (3 tried)",
    ),
    ("newest checkpoint holds a wrong shape", lambda d: edit_checkpoint(d / "checkpoints" / NEWEST, wrong_shape), "does not fit this run"),
    (
        "newest checkpoint lacks a nested key",
        lambda d: edit_checkpoint(d / "checkpoints" / NEWEST, lambda p: p["run"][0].pop("eval_history")),
        "missing 'eval_history'",
    ),
    ("metrics.csv row damaged", damage_metrics_row, "metrics.csv line 4 is damaged"),
    ("metrics.csv missing", lambda d: (d / "metrics.csv").unlink(), "metrics.csv is missing"),
    ("episodes.csv header damaged", rewrite("episodes.csv", "steps,what\n1,2\n"), "episodes.csv does not start with fastdqn's header"),
]


@pytest.mark.parametrize(("damage", "message"), [case[1:] for case in REFUSED_RUN], ids=[case[0] for case in REFUSED_RUN])
def test_resume_refuses_a_damaged_run_in_one_line_and_changes_nothing(run: Path, damage: Callable[[Path], None], message: str) -> None:
    assert_resume_refused_unchanged(run, damage, message)


def test_resume_through_the_library_refuses_the_same_damage_and_changes_nothing(run: Path) -> None:
    edit_checkpoint(run / "checkpoints" / NEWEST, wrong_shape)
    before = digest(run)
    with pytest.raises(FastDQNError, match="does not fit this run"):
        fastdqn.train(fastdqn.Config.load(run / "config.json"), resume=run)
    assert digest(run) == before


def metric_steps(run_dir: Path, name: str = "metrics.csv") -> list[int]:
    lines = (run_dir / name).read_text().splitlines()
    width = len(lines[0].split(","))
    assert all(len(line.split(",")) == width for line in lines), "a row of the wrong width was written back"
    return [int(line.split(",")[0]) for line in lines[1:]]


@pytest.mark.parametrize(
    ("damage", "reason"),
    [(truncate, "not a readable fastdqn checkpoint"), (lambda p: edit_checkpoint(p, lambda x: x.pop("rng")), "is incomplete (no rng)")],
    ids=["truncated", "missing a section"],
)
def test_resume_falls_back_to_the_newest_intact_checkpoint_and_keeps_the_damaged_one(
    run: Path, damage: Callable[[Path], None], reason: str
) -> None:
    newest = run / "checkpoints" / NEWEST
    damage(newest)
    damaged_bytes = newest.read_bytes()
    code, lines = resume_cli(run)
    assert code == 0
    notes = [line for line in lines if line.startswith("fastdqn: ")]
    assert len(notes) == 1 and reason in notes[0] and f"resuming from the older {OLDER}" in notes[0], lines
    assert (run / "checkpoints" / f"damaged-{NEWEST}").read_bytes() == damaged_bytes  # kept, never written over
    assert not (run / STALE).exists()
    steps = metric_steps(run)
    assert steps == sorted(set(steps)) and steps[-1] == 600  # rows past step 180 were cut, then written again


@pytest.mark.parametrize("name", ["metrics.csv", "episodes.csv"])
def test_resume_drops_a_torn_last_row_and_never_writes_it_back(run: Path, name: str) -> None:
    intact = (run / name).read_bytes()
    torn = b"273,9,0.41"
    (run / name).write_bytes(intact + torn)  # a crash cut this row off mid-write
    code, lines = resume_cli(run)
    assert code == 0
    assert sum(line.startswith("fastdqn: ") and "cut off mid-write" in line for line in lines) == 1, lines
    after = (run / name).read_bytes()
    assert after.startswith(intact) and torn not in after
    steps = metric_steps(run, name)
    assert steps == sorted(steps) and steps[-1] >= 500


def test_resume_accepts_a_metrics_csv_written_before_its_last_column_existed(run: Path) -> None:
    lines = (run / "metrics.csv").read_text().splitlines()
    older = [line.rsplit(",", 1)[0] for line in lines]  # as fastdqn wrote it before eval_complete
    (run / "metrics.csv").write_text("\n".join(older) + "\n")
    code, lines_out = resume_cli(run)
    assert code == 0, lines_out
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[0] == lines[0] and [row.rsplit(",", 1)[0] for row in rows[1 : len(older)]] == older[1:]
    assert metric_steps(run)[-1] == 600


def test_a_group_refused_on_one_member_leaves_every_member_untouched(group: Path) -> None:
    damage_metrics_row(group / "s2")  # the last member: the first one's files would have been cut back already
    (group / "s1" / "episodes.csv").write_bytes((group / "s1" / "episodes.csv").read_bytes() + b"300,1")  # torn: repairable
    before = digest(group)
    code, lines = resume_cli(group)
    assert code == 2
    assert len(lines) == 1 and "s2/metrics.csv line 4 is damaged" in lines[0], lines
    assert digest(group) == before


REFUSED_GROUP: list[tuple[str, Callable[[Path], None], str]] = [
    ("group.json not JSON", rewrite("group.json", '{"format": "fastdqn-group-1", "members": ['), "its group.json cannot be read"),
    (
        "group.json text for a number",
        lambda d: edit_json(d / "group.json", lambda v: v["members"][1].update(learning_rate="fast")),
        "member 1",
    ),
    ("member config.json missing", lambda d: (d / "s1" / "config.json").unlink(), "no config.json there"),
    (
        "every group checkpoint truncated",
        lambda d: [truncate(p) for p in (d / "checkpoints").glob("*.pt")] and None,
        "no checkpoint there can be used",
    ),
]


@pytest.mark.parametrize(("damage", "message"), [case[1:] for case in REFUSED_GROUP], ids=[case[0] for case in REFUSED_GROUP])
def test_group_resume_refuses_damage_in_one_line_and_changes_nothing(group: Path, damage: Callable[[Path], None], message: str) -> None:
    assert_resume_refused_unchanged(group, damage, message)


def test_group_resume_falls_back_past_a_truncated_newest_checkpoint(group: Path) -> None:
    newest = group / "checkpoints" / NEWEST
    truncate(newest)
    damaged = newest.read_bytes()
    code, lines = resume_cli(group)
    assert code == 0
    assert sum(line.startswith("fastdqn: ") and OLDER in line for line in lines) == 1, lines
    assert (group / "checkpoints" / f"damaged-{NEWEST}").read_bytes() == damaged
    for member in ("s1", "s2"):
        steps = metric_steps(group / member)
        assert steps == sorted(set(steps)) and steps[-1] == 600


# --- non-finite values -------------------------------------------------------------------------


def all_checkpoints_finite(folder: Path) -> int:
    """Every .pt under `folder` (a run's or a group's) loads and holds finite weights; returns how many there are."""
    paths = list(folder.rglob("*.pt"))
    for path in paths:
        require_finite_weights(torch.load(path, weights_only=True), path)
    return len(paths)


@pytest.mark.parametrize(
    ("env_id", "what"),
    [("nonfinite_envs:NaNReward-v0", "rewards"), ("nonfinite_envs:InfObs-v0", "observations")],
    ids=["nan-reward", "inf-obs"],
)
def test_an_env_producing_nan_is_named_as_the_env_not_the_update(tmp_path: Path, env_id: str, what: str) -> None:
    code, lines = run_cli(
        "train", "--env", env_id, "--out", str(tmp_path), "--run-name", "r", "--quiet", "--no-save-plot", "--device", "cpu",
        "--num-envs", "3", "--learning-starts", "60", "--total-steps", "600", "--checkpoint-every-steps", "60",
        "--eval-every-steps", "0", "--stop-at-return", "none",
    )  # fmt: skip
    assert code == 1
    assert len(lines) == 1 and f"the env produced NaN/inf {what} at env step" in lines[0] and "(env 0" in lines[0], lines
    assert "learning-rate" not in lines[0]
    assert all_checkpoints_finite(tmp_path / "r") >= 2  # written before the NaN, none after


@pytest.mark.parametrize("env_id", ["nonfinite_envs:NaNReward-v0", "nonfinite_envs:InfObs-v0"])
def test_an_env_producing_nan_fails_a_library_run_and_a_group_with_the_env_named(tmp_path: Path, env_id: str) -> None:
    cfg = counter_config(tmp_path, env_id=env_id, run_name="one", checkpoint_every_steps=60, total_steps=600)
    with pytest.raises(TrainingFailed, match=r"the env produced NaN/inf .* a fault of the env, not of the update"):
        fastdqn.train(cfg)
    members = [cfg.replace(seed=seed, run_name="many") for seed in (1, 2)]
    with pytest.raises(TrainingFailed, match="the env produced NaN/inf"):
        train_many(members)
    assert all_checkpoints_finite(tmp_path) >= 4


def test_a_diverging_update_keeps_its_own_advice_and_writes_no_nan(tmp_path: Path) -> None:
    code, lines = run_cli(
        "train", "--env", "toyenv:Counter-v0", "--out", str(tmp_path), "--run-name", "r", "--quiet", "--no-save-plot",
        "--device", "cpu", "--num-envs", "3", "--learning-starts", "60", "--total-steps", "600", "--learning-rate", "1e30",
        "--checkpoint-every-steps", "30", "--eval-every-steps", "0", "--stop-at-return", "none",
    )  # fmt: skip
    assert code == 1
    assert len(lines) == 1 and "lower --learning-rate" in lines[0] and "env produced" not in lines[0], lines
    assert not (tmp_path / "r" / "final.pt").exists()
    assert all_checkpoints_finite(tmp_path / "r") >= 1
    with pytest.raises(TrainingFailed, match="lower --learning-rate"):
        fastdqn.train(counter_config(tmp_path, run_name="lib", learning_rate=1e30, total_steps=600))


def test_a_diverged_model_never_replaces_a_good_best_pt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second evaluation would score higher; by then the weights are NaN, so it must not happen at all."""
    scores = iter([1.0, 2.0, 3.0])
    monkeypatch.setattr(Evaluator, "run", lambda self, agent, target=None: Evaluation(torch.full((3,), next(scores)).numpy(), True))
    real_update = DQNAgent.update

    def update_that_diverges(self: DQNAgent, batch: Any) -> dict[str, torch.Tensor]:
        stats = real_update(self, batch)
        if self.updates >= 100:  # after the first evaluation (env step 90), before the second (180)
            self.online.data.fill_(float("nan"))
        return stats

    monkeypatch.setattr(DQNAgent, "update", update_that_diverges)
    cfg = counter_config(tmp_path, run_name="r", total_steps=600, eval_every_steps=90, eval_episodes=3, log_every_steps=300)
    with pytest.raises(TrainingFailed, match="lower --learning-rate"):
        fastdqn.train(cfg)
    best = load_checkpoint(tmp_path / "r" / "best.pt")["agent"]
    assert all(torch.isfinite(t).all() for t in best["q_network"].values())
    assert next(scores) == 2.0  # the evaluation of the diverged model never ran


def test_a_diverged_group_member_stops_alone_and_keeps_its_best_pt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = itertools.count(1)
    monkeypatch.setattr(MemberEvaluator, "run", lambda self, members: [Evaluation(np.full(3, float(next(calls)))[:3], True)] * members.k)
    real_update = MemberAgents.update

    def update_that_diverges(self: MemberAgents, batch: Any, active: np.ndarray) -> dict[str, torch.Tensor]:
        stats = real_update(self, batch, active)
        if self.k == 2 and self.updates[0] >= 100:  # member 0, after the first evaluation (env step 90)
            self.online[0].fill_(float("nan"))
        return stats

    monkeypatch.setattr(MemberAgents, "update", update_that_diverges)
    cfgs = [counter_config(tmp_path, run_name="g", seed=seed, total_steps=600, eval_every_steps=90, eval_episodes=3) for seed in (1, 2)]
    first, second = train_many(cfgs)
    assert first.best_eval_return == 1.0 and second.best_eval_return is not None and second.best_eval_return > 1.0
    require_finite_weights(torch.load(tmp_path / "g" / "s1" / "best.pt", weights_only=True), Path("best.pt"))
    assert not (tmp_path / "g" / "s1" / "final.pt").exists() and (tmp_path / "g" / "s2" / "final.pt").exists()
    assert "failed: NaN/inf" in (tmp_path / "g" / "summary.csv").read_text()


def test_a_member_diverging_between_log_rows_stops_alone_at_the_next_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_update = MemberAgents.update

    def update_that_diverges(self: MemberAgents, batch: Any, active: np.ndarray) -> dict[str, torch.Tensor]:
        stats = real_update(self, batch, active)
        if self.k == 2 and self.updates[0] >= 100:  # member 0, well before the only log row (at the end)
            self.online[0].fill_(float("nan"))
        return stats

    monkeypatch.setattr(MemberAgents, "update", update_that_diverges)
    steps = {"total_steps": 600, "log_every_steps": 600, "checkpoint_every_steps": 180, "eval_every_steps": 0}
    cfgs = [counter_config(tmp_path, run_name="g", seed=seed, **steps) for seed in (1, 2)]
    first, second = train_many(cfgs)  # the checkpoint at 180 meets member 0's NaN weights: it stops, member 1 goes on
    assert first.env_steps is not None and first.env_steps < 600 and second.env_steps == 600
    summary = (tmp_path / "g" / "summary.csv").read_text()
    assert "failed: NaN/inf" in summary and "total_steps" in summary
    checkpoints = sorted((tmp_path / "g" / "checkpoints").glob("step-*.pt"))
    assert checkpoints, "the group wrote no checkpoint after its member failed"
    for path in checkpoints:
        for tensor in (t for t in torch.load(path, weights_only=True)["members"].values() if isinstance(t, torch.Tensor)):
            assert not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())
    assert (tmp_path / "g" / "s2" / "final.pt").exists() and not (tmp_path / "g" / "s1" / "final.pt").exists()


def test_saving_nan_weights_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    agent = fastdqn.train(counter_config(tmp_path, run_name="r", total_steps=120)).agent
    path = tmp_path / "r" / "final.pt"
    before = path.read_bytes()
    agent.online.data[0] = float("inf")
    with pytest.raises(NonFiniteWeights, match="the weights became NaN/inf"):
        agent.save(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("obs", "rewards", "message"),
    [
        (np.zeros((4, 3), np.float32), np.array([0, 0, np.nan, 0], np.float32), "rewards at env step 1,200 (env 2, value nan)"),
        (
            np.array([[0, 1], [np.inf, 0], [0, -np.inf]], np.float64),
            np.zeros(3, np.float32),
            "observations at env step 1,200 (env 1, value inf)",
        ),
        (np.full((2, 3), 3e38, np.float32), np.full(2, 3e38, np.float32), None),  # finite: the fast path's overflow is no error
        (np.full((2, 3), 255, np.uint8), np.zeros(2, np.float32), None),
    ],
    ids=["nan-reward", "inf-obs", "huge-but-finite", "uint8-frames"],
)
def test_the_env_boundary_check_names_the_first_bad_env_and_passes_finite_arrays(
    obs: np.ndarray, rewards: np.ndarray, message: str | None
) -> None:
    if message is None:
        check_env_arrays(obs, rewards)
        return
    with pytest.raises(NonFiniteEnvOutput) as caught:
        check_env_arrays(obs, rewards)
    assert message in caught.value.at_step(1_200) and message.replace(" at env step 1,200", "") in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).at_step(3) == caught.value.at_step(3)  # crosses to the learner from a Ray actor


def test_every_episode_row_up_to_a_checkpoint_is_on_disk_when_it_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill -9 right after a checkpoint (between log rows) must not take episode rows the resume will not write again."""
    import fastdqn.resume

    seen: list[tuple[int, int]] = []
    real_write = fastdqn.resume.write_run_checkpoint

    def write_and_count(run_dir: Path, payload: dict[str, Any], env_steps: int, keep: int) -> Path:
        on_disk = len((run_dir / "episodes.csv").read_text().splitlines()) - 1  # what survives if the process dies now
        seen.append((on_disk, payload["metrics"][0]["episodes"]))
        return real_write(run_dir, payload, env_steps, keep)

    monkeypatch.setattr(fastdqn.resume, "write_run_checkpoint", write_and_count)
    fastdqn.train(counter_config(tmp_path, run_name="r", total_steps=600, log_every_steps=300, checkpoint_every_steps=45))
    assert len(seen) >= 10 and all(on_disk == counted for on_disk, counted in seen), seen
