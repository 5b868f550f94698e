"""Hostile situations an operator meets: each is one line and an exit code, and no file written before changes.

Run names that are paths, `--overwrite` of what is not a run, a second process on one folder, a
stale lock, NaN and strings where numbers belong, a full or read-only disk, envs and files that
fail, and a group too large for memory. Every case checks the files under the output folder
byte for byte before and after, unless the case is meant to change them.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import fastdqn.checkpoint
import fastdqn.resources
import fastdqn.runfolder
from fastdqn.cli import app
from fastdqn.config import Config, ConfigError
from fastdqn.group import train_many
from fastdqn.resources import ResourceError, estimate
from fastdqn.runlock import LOCK_NAME, RunFolderBusy, acquire
from fastdqn.train import TrainingInterrupted, train

group_module = importlib.import_module("fastdqn.group")  # `fastdqn.group` could name a function one day, as `fastdqn.train` does
train_module = importlib.import_module("fastdqn.train")  # `fastdqn.train` is the function

runner = CliRunner()
QUICK = ["--quiet", "--no-save-plot", "--device", "cpu", "--num-envs", "4", "--eval-every-steps", "0", "--stop-at-return", "none"]
SMALL = [*QUICK, "--total-steps", "400", "--learning-starts", "100", "--checkpoint-every-steps", "200", "--buffer-capacity", "1000"]


def small_config(out: Path, **values: Any) -> Config:
    base: dict[str, Any] = dict(out_dir=str(out), device="cpu", num_envs=4, eval_every_steps=0, stop_at_return=None, save_plot=False)
    base |= dict(total_steps=400, learning_starts=100, checkpoint_every_steps=200, buffer_capacity=1000)
    return Config(**(base | values))


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def one_line(output: str) -> None:
    """One `error:` line, after at most one note that an env id has no preset of its own."""
    note = re.match(r"note: no preset for \S+; using the general `default` preset \(.*?\) ", output)
    assert output.count("note:") == (1 if note else 0), output
    output = output[note.end() :] if note else output
    assert output.startswith("error: ") and output.count("error:") == 1 and len(output) < 600, output


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An out folder holding a finished run `r`, a group `g` and a folder of the user's own files."""
    out = tmp_path_factory.mktemp("made")
    code, output = run_cli("train", "--out", str(out), "--run-name", "r", *SMALL)
    assert code == 0, output
    code, output = run_cli("train", "--out", str(out), "--run-name", "g", "--seeds", "1,2", *SMALL)
    assert code == 0, output
    (out / "notes").mkdir()
    (out / "notes" / "thesis.txt").write_text("three years of work\n")
    (out / "not-a-run").write_text("a file\n")
    return out


@pytest.fixture
def out(made: Path, tmp_path: Path) -> Path:
    """A private copy of `made`, inside a parent that also holds a file of the user's."""
    (tmp_path / "above.txt").write_text("keep me\n")
    shutil.copytree(made, tmp_path / "out")
    return tmp_path / "out"


# --- run names, --overwrite and the folders around --out ------------------------------------------------------------

LONG = "n" * 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run-name", ".", "--overwrite"], "run_name='.' names --out itself or the folder above it"),
        (["--run-name", "..", "--overwrite"], "run_name='..' names --out itself or the folder above it"),
        (["--run-name", "../escaped"], "is a path, not one folder name"),
        (["--run-name", "/tmp/fastdqn-abs", "--overwrite"], "is a path, not one folder name"),
        (["--run-name", "a\\b"], "is a path, not one folder name"),
        (["--run-name", "nul\0name"], "holds a NUL character"),
        (["--run-name", ""], "run_name is empty"),
        (["--run-name", LONG], "run_name is 300 bytes long, more than the 255"),
        (
            ["--run-name", "notes", "--overwrite"],
            "holds files but no fastdqn run (no config.json or group.json), so --overwrite leaves it alone",
        ),
        (["--run-name", "not-a-run", "--overwrite"], "is a file, not a run folder"),
        (["--run-name", "r"], "already holds a run; continue it with --resume"),
        (["--seeds", "1,2", "--run-name", "notes", "--overwrite"], "holds files but no fastdqn run"),
    ],
)
def test_run_folder_names_and_overwrite_refused_with_nothing_touched(out: Path, args: list[str], message: str) -> None:
    before, above = snapshot(out.parent), set(out.parent.iterdir())
    code, output = run_cli("train", "--out", str(out), *SMALL, *args)
    assert code == 2, output
    assert message in output
    one_line(output)
    assert snapshot(out.parent) == before and set(out.parent.iterdir()) == above


def test_overwrite_refuses_a_symlinked_run_folder(out: Path, tmp_path: Path) -> None:
    (out / "link").symlink_to(out / "r", target_is_directory=True)
    before = snapshot(out)
    code, output = run_cli("train", "--out", str(out), "--run-name", "link", "--overwrite", *SMALL)
    assert code == 2 and "is a symbolic link" in output
    assert snapshot(out) == before


@pytest.mark.parametrize(
    "values",
    [{"run_name": ".."}, {"run_name": "../x"}, {"run_name": "/etc"}, {"run_name": "x\0y"}, {"run_name": "y" * 256}],
)
def test_library_refuses_run_names_that_are_paths(out: Path, values: dict[str, Any]) -> None:
    before = snapshot(out.parent)
    with pytest.raises(ConfigError, match="run_name"):
        train(small_config(out, **values), overwrite=True)
    assert snapshot(out.parent) == before


def test_library_overwrite_leaves_a_folder_that_is_not_a_run(out: Path) -> None:
    before = snapshot(out)
    with pytest.raises(ConfigError, match="no fastdqn run"):
        train(small_config(out, run_name="notes"), overwrite=True)
    with pytest.raises(ConfigError, match="no fastdqn run"):
        train_many([small_config(out, run_name="notes", seed=s) for s in (1, 2)], overwrite=True)
    assert snapshot(out) == before


def test_group_member_names_too_long_are_refused_before_anything_is_built(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastdqn.runfolder, "name_max", lambda folder: 12)  # a file system with short names
    cfgs = [small_config(out, run_name="grid", learning_rate=lr) for lr in (1e-3, 2e-3)]
    before = snapshot(out)
    with pytest.raises(ConfigError, match=r"member folder name 'learning_rate_0.001-s1'.* is 22 bytes long, more than the 12"):
        train_many(cfgs)
    assert snapshot(out) == before and not (out / "grid").exists()


def test_overwrite_replaces_only_the_named_run(out: Path) -> None:
    before = snapshot(out.parent)
    code, output = run_cli("train", "--out", str(out), "--run-name", "r", "--overwrite", *SMALL, "--seed", "9")
    assert code == 0, output
    after = snapshot(out.parent)
    assert {k: v for k, v in after.items() if not k.startswith("out/r/")} == {k: v for k, v in before.items() if not k.startswith("out/r/")}
    assert Config.load(out / "r" / "config.json").seed == 9 and not (out / "r" / LOCK_NAME).exists()


def test_a_failed_start_empties_a_folder_the_user_made_but_keeps_it(out: Path) -> None:
    (out / "mine").mkdir()
    with pytest.raises(ConfigError, match="reset raised RuntimeError"):
        train(small_config(out, run_name="mine", env_id="hostile_envs:ResetRaises-v0"))
    assert (out / "mine").is_dir() and not any((out / "mine").iterdir())


# --- the lock: a second process, a stale holder, every way out ------------------------------------------------------


def _hold_lock(folder: Path) -> subprocess.Popen[str]:
    """A second process that takes `folder`'s lock and waits."""
    code = "import sys; from pathlib import Path; from fastdqn.runlock import acquire; acquire(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("r", ["--resume", "{out}/r"]),
        ("r", ["--out", "{out}", "--run-name", "r", "--overwrite", *SMALL]),
        ("g", ["--resume", "{out}/g"]),
        ("g", ["--out", "{out}", "--seeds", "1,2", "--run-name", "g", "--overwrite", *SMALL]),
    ],
)
def test_second_process_on_a_folder_is_refused_naming_the_holder(out: Path, name: str, args: list[str]) -> None:
    holder = _hold_lock(out / name)
    try:
        before = snapshot(out)
        code, output = run_cli("train", *(a.format(out=out) for a in args), "--total-steps", "600")
        assert code == 3, output
        assert f"is in use by process {holder.pid}" in output
        one_line(output)
        assert snapshot(out) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_new_run_into_a_folder_being_written_names_the_writer(out: Path) -> None:
    lock = acquire(out / "r")
    before = snapshot(out)
    code, output = run_cli("train", "--out", str(out), "--run-name", "r", *SMALL)
    assert code == 3 and f"is in use by process {os.getpid()}" in output, output
    one_line(output)
    assert snapshot(out) == before
    lock.release()


def test_ray_learner_entry_takes_the_lock_before_anything_starts(out: Path) -> None:
    from fastdqn.actor_source import train_distributed

    lock = acquire(out / "r")
    before = snapshot(out)
    with pytest.raises(RunFolderBusy, match=f"process {os.getpid()}"):
        train_distributed(small_config(out, run_name="r", actors=1), overwrite=True)
    assert snapshot(out) == before
    lock.release()


def test_a_training_process_refuses_a_second_one_and_releases_its_lock_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, str(Path(__file__).parents[1] / "cli.py"), "train", "--out", str(tmp_path), "--run-name", "live", *QUICK]
    command += ["--total-steps", "10000000", "--checkpoint-every-steps", "400"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = tmp_path / "live"
    try:
        deadline = time.monotonic() + 120
        while not list((run_dir / "checkpoints").glob("step-*.pt")):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        for args in (["--resume", str(run_dir)], ["--out", str(tmp_path), "--run-name", "live", "--overwrite", *SMALL]):
            code, output = run_cli("train", *args)
            assert code == 3 and f"is in use by process {process.pid}" in output, output
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143 and f"--resume{run_dir}" in "".join(stderr.split()), stderr
    assert not (run_dir / LOCK_NAME).exists()


def test_library_resume_refused_while_this_process_holds_the_lock(out: Path) -> None:
    lock = acquire(out / "r")
    before = snapshot(out)
    with pytest.raises(RunFolderBusy, match=f"process {os.getpid()}"):
        train(Config.load(out / "r" / "config.json").replace(total_steps=600), resume=out / "r")
    assert snapshot(out) == before
    lock.release()
    assert not (out / "r" / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over_and_released(out: Path) -> None:
    holder = _hold_lock(out / "r")
    holder.kill()  # kill -9: the lock file stays behind
    holder.wait()
    held = json.loads((out / "r" / LOCK_NAME).read_text())
    assert held["pid"] == holder.pid and held["host"] == socket.gethostname() and held["started"]
    code, output = run_cli("train", "--resume", str(out / "r"), "--total-steps", "600")
    assert code == 0, output
    assert not (out / "r" / LOCK_NAME).exists()
    assert Config.load(out / "r" / "config.json").total_steps == 400  # the saved config is the run's, as resume left it


def test_lock_of_another_host_is_refused_and_a_torn_old_one_taken_over(out: Path) -> None:
    path = out / "r" / LOCK_NAME
    path.write_text(json.dumps({"pid": 1, "host": "other-host", "started": "2026-01-01T00:00:00+00:00"}))
    before = snapshot(out)
    code, output = run_cli("train", "--resume", str(out / "r"))
    assert code == 3 and "process 1 on host other-host" in output and f"if that process is gone, delete {path}" in output, output
    assert snapshot(out) == before
    path.write_text('{"pid": 12')  # torn by a crash while it was written
    with pytest.raises(RunFolderBusy, match="is being locked by another process right now"):
        acquire(out / "r")  # a fresh torn file may be a lock being written
    os.utime(path, (time.time() - 60, time.time() - 60))
    lock = acquire(out / "r")  # an old torn file is no one's
    assert json.loads(path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not path.exists()


def test_lock_is_released_on_normal_end_failure_and_interrupt(out: Path) -> None:
    result = train(small_config(out, run_name="fresh"))
    assert not (result.run_dir / LOCK_NAME).exists()
    with pytest.raises(TrainingInterrupted):
        train(small_config(out, run_name="cut", total_steps=800), interrupt_at_step=300)
    assert (out / "cut" / "checkpoints").is_dir() and not (out / "cut" / LOCK_NAME).exists()
    with pytest.raises(ConfigError, match="reset raised RuntimeError"):
        train(small_config(out, run_name="broken", env_id="hostile_envs:ResetRaises-v0"))
    assert not (out / "broken").exists()  # only its config was written: removed, so the name is free again
    lock = acquire(out / "cut")  # free to take again
    lock.release()


# --- numbers: NaN, inf, ranges and types, from every door ------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-grad-norm", "nan", "max_grad_norm=nan must be a finite number >= 0"),
        ("--max-grad-norm", "-1", "max_grad_norm=-1.0 must be a finite number >= 0"),
        ("--adam-eps", "0", "adam_eps=0.0 must be a finite number > 0"),
        ("--stop-at-return", "inf", "stop_at_return=inf must be a finite number or none"),
        ("--per-alpha", "nan", "per_alpha=nan"),
        ("--learning-rate", "inf", "learning_rate=inf"),
        ("--tau", "nan", "tau=nan must lie in (0, 1]"),
        ("--grad-clip-value", "-inf", "grad_clip_value=-inf"),
        ("--epsilon-end", "1.5", "epsilon_end=1.5 must lie in [0, 1]"),
        ("--seed", "-1", "seed=-1 must lie in [0, 2**32 - 1]"),
    ],
)
def test_numbers_that_make_no_sense_are_refused(out: Path, option: str, value: str, message: str) -> None:
    before = snapshot(out)
    code, output = run_cli("train", "--out", str(out), "--run-name", "new", *SMALL, option, value)
    assert code == 2 and message in output, output
    one_line(output)
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"total_steps": "1000"}, "total_steps='1000' must be an integer, not a str"),
        ({"num_envs": True}, "num_envs=True must be an integer, not a bool"),
        ({"batch_size": 64.0}, "batch_size=64.0 must be an integer, not a float"),
        ({"learning_rate": "5e-3"}, "learning_rate='5e-3' must be a number, not a str"),
        ({"double_dqn": "yes"}, "double_dqn='yes' must be true or false"),
        ({"max_grad_norm": float("nan")}, "max_grad_norm=nan"),
        ({"stop_at_return": math.inf}, "stop_at_return=inf"),
        ({"extra": {"note": float("nan")}}, "extra holds a value config.json cannot store"),
        ({"gamma": 10**400}, "is too large for a float"),
    ],
)
def test_library_config_refuses_wrong_types_and_non_finite_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[").replace("*", r"\*")):
        Config(**values)


FLOAT_FIELDS = [f.name for f in dataclasses.fields(Config) if str(f.type) in ("float", "float | None")]
INT_FIELDS = [f.name for f in dataclasses.fields(Config) if str(f.type) == "int"]


@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_field_refuses_nan_inf_and_text(name: str) -> None:
    for value in (float("nan"), math.inf, -math.inf, "0.5", True):
        with pytest.raises(ConfigError, match=f"^{name}="):
            Config(**{name: value})


@pytest.mark.parametrize("name", INT_FIELDS)
def test_every_int_field_refuses_bools_floats_text_and_negatives(name: str) -> None:
    for value in (True, 4.0, "4", -1, None):
        with pytest.raises(ConfigError, match=f"^{name}="):
            Config(**{name: value})


def test_hand_edited_config_json_with_a_string_is_one_line_and_left_as_is(out: Path) -> None:
    path = out / "r" / "config.json"
    values = json.loads(path.read_text())
    values["gamma"] = "0.99"
    path.write_text(json.dumps(values))
    before = snapshot(out)
    code, output = run_cli("train", "--resume", str(out / "r"))
    assert code == 2 and "gamma='0.99' must be a number, not a str" in output
    one_line(output)
    assert snapshot(out) == before


def test_toml_nan_and_config_json_never_holds_nan(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("max_grad_norm = nan\n")
    code, output = run_cli("train", "--config", str(toml), "--out", str(tmp_path / "o"))
    assert code == 2 and "max_grad_norm=nan" in output
    assert not (tmp_path / "o").exists()
    assert "NaN" not in Config().to_json() and "Infinity" not in Config(stop_at_return=None).to_json()


# --- operating-system errors: one line, exit 74, files written before intact ----------------------------------------


def test_disk_full_at_a_checkpoint_keeps_the_earlier_one_and_prints_the_resume_command(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = fastdqn.checkpoint.save_atomic
    written: list[Path] = []

    def save_until_full(payload: dict[str, Any], path: Path) -> Path:
        if path.parent.name == "checkpoints" and written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(real_save(payload, path))
        return written[-1]

    monkeypatch.setattr(fastdqn.checkpoint, "save_atomic", save_until_full)
    code, output = run_cli("train", "--out", str(out), "--run-name", "full", *SMALL)
    assert code == 74, output
    assert "No space left on device (ENOSPC)" in output and f"continue with: fastdqn train --resume {out / 'full'}" in output
    one_line(output)
    first = snapshot(out / "full" / "checkpoints")
    assert list(first) == [written[0].name] and not (out / "full" / LOCK_NAME).exists()
    monkeypatch.setattr(fastdqn.checkpoint, "save_atomic", real_save)
    code, output = run_cli("train", "--resume", str(out / "full"))  # the checkpoint before the full disk is whole
    assert code == 0, output


@pytest.mark.parametrize(
    ("number", "text"),
    [(errno.EROFS, "(EROFS)"), (errno.EACCES, "(EACCES)"), (errno.EPERM, "(EPERM)"), (errno.ENOSPC, "(ENOSPC)")],
)
def test_unwritable_output_folder_is_one_line_and_writes_nothing(
    out: Path, monkeypatch: pytest.MonkeyPatch, number: int, text: str
) -> None:
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "ro":
            raise OSError(number, os.strerror(number), str(self))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    before = snapshot(out)
    code, output = run_cli("train", "--out", str(out), "--run-name", "ro", *SMALL)
    assert code == 74 and text in output, output
    one_line(output)
    assert snapshot(out) == before and not (out / "ro").exists()


def test_path_too_long_for_the_file_system_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["d" * 200] * 25))  # longer than PATH_MAX: the kernel says ENAMETOOLONG
    code, output = run_cli("train", "--out", str(deep), "--run-name", "r", *SMALL)
    assert code == 74 and "(ENAMETOOLONG)" in output, output
    one_line(output)


@pytest.mark.parametrize(("where", "text"), [("not-a-run", "(ENOTDIR)"), ("not-a-run/below", "(ENOTDIR)")])
def test_out_folder_that_is_a_file_is_one_line(out: Path, where: str, text: str) -> None:
    before = snapshot(out)
    code, output = run_cli("train", "--out", str(out / where), "--run-name", "r", *SMALL)
    assert code == 74 and text in output and "pass --out a folder" in output, output
    one_line(output)
    assert snapshot(out) == before


def test_plot_into_a_read_only_place_is_one_line(out: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.figure

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(out / "r" / "returns.png"))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", refuse)
    before = snapshot(out)
    code, output = run_cli("plot", str(out / "r"))
    assert code == 74 and "(EROFS)" in output
    one_line(output)
    assert snapshot(out) == before


# --- envs and input files --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("raising_module:X-v0", "importing 'raising_module' raised RuntimeError: this module is broken at import"),
        ("hostile_envs:InitRaises-v0", "its constructor raised ValueError: no licence file found"),
        ("hostile_envs:ResetRaises-v0", "reset raised RuntimeError: the simulator lost its connection"),
    ],
)
def test_envs_that_raise_are_one_line_and_leave_no_folder(out: Path, env: str, message: str) -> None:
    before = snapshot(out)
    for args in (["--run-name", "e"], ["--run-name", "eg", "--seeds", "1,2"]):
        code, output = run_cli("train", "--out", str(out), *SMALL, "--env", env, *args)
        assert code == 2 and message in output, output
        one_line(output)
        assert snapshot(out) == before and not (out / "e").exists() and not (out / "eg").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("run.toml", "gamma = 0.9 # caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        ("run.txt", b"gamma = 0.9\n", "the name must end in .toml"),
        ("config.json", b"{not json", "is not valid JSON"),
        ("config.json", b"[1, 2]", "holds a JSON list"),
        ("config.json", b'{"gamma": 0.9}\xff', "is not UTF-8 text"),
    ],
)
def test_config_files_that_are_not_what_they_claim_are_one_line(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for command in ("train", "config"):
        code, output = run_cli(command, "--config", str(path), *(["--out", str(tmp_path / "o")] if command == "train" else []))
        assert code == 2 and message in output, output
        one_line(output)
    assert path.read_bytes() == content and not (tmp_path / "o").exists()


# --- memory estimated before anything is built -----------------------------------------------------------------------


def test_a_hundred_thousand_seeds_are_refused_before_anything_is_built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("built envs for a group that cannot fit")

    monkeypatch.setattr(group_module, "MemberEnvs", never)
    monkeypatch.setattr(fastdqn.resources, "available_bytes", lambda device: (20 * 2**30, "MemAvailable in /proc/meminfo"))
    code, output = run_cli("train", "--seeds", "1-100000", "--out", str(tmp_path / "o"))
    assert code == 2 and "100,000 runs need an estimated" in output and "20.00 GiB is available" in output, output
    one_line(output)
    assert not (tmp_path / "o").exists()


def test_library_group_too_large_is_refused_with_the_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastdqn.resources, "available_bytes", lambda device: (2**20, "MemAvailable in /proc/meminfo"))
    with pytest.raises(ResourceError, match=r"8 runs need an estimated .* GiB of memory \(replay .* but 0.00 GiB is available"):
        train_many([small_config(tmp_path, seed=s) for s in range(8)])
    with pytest.raises(ResourceError, match="the run needs an estimated"):
        train(small_config(tmp_path, buffer_capacity=100_000))
    with pytest.raises(ResourceError, match=r"networks \+ Adam"):
        train(small_config(tmp_path, hidden_dim=10**6))  # 10^12 weights: refused from their shapes, none allocated
    assert not any(tmp_path.iterdir())


def test_cuda_runs_are_held_to_the_free_device_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fastdqn.device

    monkeypatch.setattr(fastdqn.device, "resolve_device", lambda name: torch.device("cuda"))
    free = {"cuda": 2**20, "cpu": 64 * 2**30}
    monkeypatch.setattr(fastdqn.resources, "available_bytes", lambda device: (free[device.type], f"free on {device.type}"))
    with pytest.raises(ResourceError, match=r"the run needs an estimated 0.\d\d GiB on cuda .* but 0.00 GiB is free \(free on cuda\)"):
        fastdqn.resources.check_memory([small_config(tmp_path, buffer_capacity=100_000)])
    fastdqn.resources.check_memory([small_config(tmp_path, buffer_capacity=1_000)])  # 1,000 rows fit in 1 MiB


def test_resume_of_a_folder_that_is_no_run_writes_no_lock_into_it(out: Path) -> None:
    before = snapshot(out)
    with pytest.raises(ConfigError):
        train(small_config(out), resume=out / "notes")
    assert snapshot(out) == before


@pytest.mark.parametrize("error", [MemoryError(), torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")])
def test_running_out_of_memory_anyway_is_one_line_and_leaves_no_folder(
    out: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def allocate(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(train_module, "make_collector", allocate)  # after the run folder is made
    before = snapshot(out)
    code, output = run_cli("train", "--out", str(out), "--run-name", "oom", *SMALL)
    assert code == 2 and f"out of memory ({type(error).__name__})" in output, output
    one_line(output)
    assert snapshot(out) == before and not (out / "oom").exists()


@pytest.mark.parametrize("n_step", [1, 3])
def test_memory_estimate_matches_the_tensors_a_run_allocates(tmp_path: Path, n_step: int) -> None:
    from fastdqn.buffer import ReplayBuffer
    from fastdqn.device import resolve_device
    from fastdqn.envs import make_envs
    from fastdqn.group import MemberAgents
    from fastdqn.train import build_replay

    cfg = small_config(tmp_path, n_step=n_step, buffer_capacity=5000)
    spaces = make_envs(cfg.env_id, cfg.num_envs).spaces
    buffer, _ = build_replay(cfg, spaces, resolve_device("cpu"))
    need = estimate(cfg, members=3)
    assert need.replay == buffer.nbytes  # the replay rows exactly
    members = MemberAgents([cfg.replace(seed=s) for s in range(3)], spaces, torch.device("cpu"))
    moments = (members.optimizer.exp_avg, members.optimizer.exp_avg_sq)
    weights = sum(t.nbytes for t in (members.online, members.target, members.grad, *moments))
    assert need.networks * 3 == weights
    cfgs = [cfg.replace(seed=s) for s in range(3)]
    replay = ReplayBuffer.for_members(cfgs, spaces.obs_shape, spaces.obs_dtype, torch.device("cpu"), discount=n_step > 1)
    real = replay.nbytes + weights
    assert real <= need.on_device <= 2 * real
