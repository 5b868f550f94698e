"""Resumable checkpoints of K >= 1 members: one payload, one loader, one restore.

`checkpoints/step-N.pt` (in a run folder, or a group folder) holds everything a run needs to go on
as if it had never stopped: the learner (a run's `agent`, which `fastdqn eval` reads too, or a
group's stacked `members`), the replay rows (unless `--no-save-buffer`) and n-step windows, the env
state where it can be read as plain data (`env`), the loop's counters, the source's position, which
members still train and how the others ended (`loop`), per member its results (`run`) and metric
state (`metrics`), every process-wide RNG (`rng`; the agents' and samplers' own generators live in
their sections) and the wall time so far. Everything is tensors and plain types, so it loads with
`weights_only=True`.

Checkpoints written before the engine was shared still resume: a single run's (sections
agent/buffer/nstep/env/loop/run/metrics/rng, no format) and a group's (`fastdqn-group-1`) are read
into this layout; any other format is refused in one line naming it.

Every file of a run is checked before any is changed (`load_for_resume`, `load_group_checkpoint`,
`check_member_files`); the repairs they find are made by `apply_repairs` once `restore` has put the
checkpoint back.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn.buffer import ReplayBuffer
from fastdqn.checkpoint import (
    CheckpointError,
    apply_repairs,
    load_checkpoint,
    newest_intact_checkpoint,
    read_payload,
    restoring,
    write_run_checkpoint,
)
from fastdqn.config import Config, ConfigError
from fastdqn.episodes import EpisodeTracker
from fastdqn.metrics import Metrics, check_run_csvs
from fastdqn.run_state import LoopState, RunResult

FORMAT = "fastdqn-checkpoint-2"
GROUP_FORMAT_1 = "fastdqn-group-1"
SECTIONS = ("buffer", "nstep", "env", "loop", "run", "metrics", "rng", "wall_seconds")
METRICS_KEYS = ("episodes", "recent_returns", "recent_lengths")
"""What `Metrics` takes back; checked here because it is put back after metrics.csv is cut."""
AGENT_KEYS = ("config", "spaces", "signature", "q_network", "target_network", "optimizer", "updates", "generator")


def checkpoint_payload(
    learner_key: str,
    learner_state: dict[str, Any],
    buffer: ReplayBuffer | None,
    source_state: dict[str, Any],
    state: LoopState,
    live: Sequence[int],
    statuses: Sequence[str],
    trackers: Sequence[EpisodeTracker | None],
    metrics: Sequence[Metrics],
    results: Sequence[RunResult],
    start_time: float,
) -> dict[str, Any]:
    """The whole run at this step. `learner_key`: `agent` (a run folder) or `members` (a group);
    `buffer`: None leaves the rows out; `source_state`: the row source's `env`, `nstep`, `position`
    and what it adds to the loop section (`loop`: Ray's actor counters)."""
    for metric in metrics:
        metric.flush()  # the rows up to this checkpoint outlive a crash right after it
    counters = [state.env_steps, state.vector_steps, state.next_eval, state.next_log, state.next_checkpoint]
    return {
        "format": FORMAT,
        learner_key: learner_state,
        "buffer": None if buffer is None else buffer.state_dict(),
        "nstep": source_state["nstep"],
        "env": source_state["env"],
        "loop": {
            "counters": counters,
            "position": source_state["position"],
            "episodes": [None if t is None else t.state_dict() for t in trackers],
            "live": list(live),
            "status": list(statuses),
            **source_state.get("loop", {}),
        },
        "run": [result_state(r) for r in results],
        "metrics": [m.state_dict() for m in metrics],
        "rng": rng_state(),
        "wall_seconds": time.perf_counter() - start_time,
    }


def save_checkpoint(folder: Path, payload: dict[str, Any], env_steps: int, keep: int) -> Path:
    """Write `folder/checkpoints/step-N.pt` atomically, then delete all but the newest `keep`."""
    return write_run_checkpoint(folder, payload, env_steps, keep)


def read_run_config(run_dir: Path) -> Config:
    """A run folder's config.json through Config's checks; a damaged or hand-broken one is refused in one line naming it."""
    path = run_dir / "config.json"
    try:
        return Config.load(path)
    except FileNotFoundError:
        raise ConfigError(f"--resume {run_dir}: no config.json there; is it a fastdqn run folder?") from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as error:  # JSONDecodeError and ConfigError are ValueErrors
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"--resume {run_dir}: {path} is not a valid fastdqn config ({reason}); fix that value or put back the file"
        ) from None


def load_resumable(path: Path) -> dict[str, Any]:
    """A checkpoint in this module's layout (older layouts read into it), refused (CheckpointError)
    unless it is readable and holds every section a resume puts back."""
    payload = _current(read_payload(path), path)
    missing = [name for name in SECTIONS if name not in payload]
    key = "agent" if "agent" in payload else "members"
    missing += [] if key in payload else ["agent"]
    if key == "agent" and isinstance(payload.get("agent"), dict):
        missing += [f"agent.{name}" for name in AGENT_KEYS if name not in payload["agent"]]
    loop: dict[str, Any] = payload["loop"] if isinstance(payload.get("loop"), dict) else {}
    counters = loop.get("counters")
    if not isinstance(counters, list) or len(counters) != 5 or not all(isinstance(c, int) for c in counters):
        missing.append("loop.counters")
    metrics = payload.get("metrics")
    if not isinstance(metrics, list) or not all(isinstance(m, dict) and all(k in m for k in METRICS_KEYS) for m in metrics):
        missing.append("metrics")  # put back after the CSV files are cut: checked before
    if missing:
        raise CheckpointError(f"{path} is incomplete (no {', '.join(dict.fromkeys(missing))})")
    if key == "agent":
        try:
            Config.from_dict(payload["agent"]["config"])
        except (ValueError, TypeError) as error:
            raise CheckpointError(f"{path} holds a config fastdqn cannot read ({str(error).strip()[:200]})") from None
    return payload


def _current(payload: dict[str, Any], path: Path) -> dict[str, Any]:
    """`payload` in this module's layout: a checkpoint from before the shared engine is read into it."""
    found = payload.get("format")
    if found == FORMAT:
        return payload
    if found == GROUP_FORMAT_1:
        renamed = {"members": "members", "buffer": "replay", "nstep": "nstep", "env": "envs", "run": "results", "metrics": "metrics"}
        upgraded: dict[str, Any] = {new: payload[old] for new, old in renamed.items() if old in payload}
        upgraded["format"] = FORMAT
        if "counters" in payload:
            loop = {name: payload.get(name) for name in ("counters", "live", "status")}
            upgraded["loop"] = {**loop, "position": {"obs": payload.get("obs")}, "episodes": payload.get("trackers")}
        if "rng" in payload:  # written before groups saved every generator: torch's only
            upgraded["rng"] = {"torch": payload["rng"]} if isinstance(payload["rng"], torch.Tensor) else payload["rng"]
        if "wall_seconds" in payload:
            upgraded["wall_seconds"] = payload["wall_seconds"]
        return upgraded
    if found is not None:
        raise CheckpointError(
            f"{path} was written in checkpoint format {found!r}, which this fastdqn cannot read; resume it with the version that wrote it"
        )
    if isinstance(payload.get("agent"), dict) and "loop" not in payload:
        raise CheckpointError(f"{path} holds weights only, not a resumable run")
    if "agent" not in payload:
        raise CheckpointError(f"{path} is a torch file but not a fastdqn checkpoint (no fastdqn agent inside)")
    old: dict[str, Any] = payload["loop"] if isinstance(payload.get("loop"), dict) else {}  # a single run's, before format 2
    loop = {**old, "live": [0], "status": ["running"], "position": old.get("collector"), "episodes": [old.get("episodes")]}
    run = payload.get("run")
    upgraded = {**payload, "format": FORMAT, "loop": loop}
    if isinstance(run, dict):
        upgraded |= {"run": [{"env_steps": 0, **run}], "wall_seconds": run.get("wall_seconds", 0.0)}
    if "metrics" in payload:
        upgraded["metrics"] = [payload["metrics"]]
    return upgraded


def load_for_resume(cfg: Config, run_dir: Path) -> dict[str, Any]:
    """The newest intact checkpoint of the run folder `run_dir`, refused with the reason when `cfg` cannot continue it.

    Every file of the run is checked before any is changed: config.json, the checkpoints (an
    unreadable newest one gives way to the next older one, said in one line), metrics.csv and
    episodes.csv (a torn last line is noted here and dropped when the run reopens them). The
    payload's `file` names the checkpoint it came from; the repairs (`damaged`, `notes`) are made
    by `apply_repairs` once the checkpoint is back in place.
    """
    read_run_config(run_dir)
    payload = newest_intact_checkpoint(run_dir, load_resumable)
    if "agent" not in payload:
        raise ConfigError(f"cannot resume {run_dir} as one run: its checkpoints hold a group; resume it with --resume on its group folder")
    saved_cfg = Config.from_dict(payload["agent"]["config"])
    mismatched = [
        name
        for name in ("env_id", "env_backend", "network", "hidden_dim", "num_envs", "buffer_capacity", "n_step", "per")
        if getattr(saved_cfg, name) != getattr(cfg, name)
    ]
    if mismatched:
        detail = ", ".join(f"{name}: checkpoint {getattr(saved_cfg, name)!r}, now {getattr(cfg, name)!r}" for name in mismatched)
        raise ConfigError(f"cannot resume {run_dir}: the run was started with different settings ({detail})")
    _refuse_finished(run_dir, payload, cfg.total_steps)
    return {**payload, "notes": check_run_csvs(run_dir, payload["loop"]["counters"][0])}


def load_group_checkpoint(group_dir: Path, total_steps: int) -> dict[str, Any]:
    """The newest intact checkpoint of a group folder (an unreadable newest one gives way to the next
    older, said in one line once every file is checked), refused in one line when it cannot be continued."""
    payload = newest_intact_checkpoint(group_dir, load_resumable)
    if "members" not in payload:
        raise ConfigError(f"cannot resume {group_dir} as a group: its checkpoints hold one run")
    _refuse_finished(group_dir, payload, total_steps)
    return payload


def _refuse_finished(folder: Path, payload: dict[str, Any], total_steps: int) -> None:
    if payload["loop"]["counters"][0] >= total_steps:
        raise ConfigError(
            f"{folder} already finished at {payload['loop']['counters'][0]:,} env steps; pass a larger --total-steps to extend it"
        )


def check_member_files(saved: dict[str, Any], run_dirs: list[Path]) -> None:
    """Check every member's config.json, metrics.csv and episodes.csv before a resume changes any file
    of the group: one refused on its last member leaves the others' files as they were. The repairs
    they need are noted in `saved` for `apply_repairs`."""
    saved["notes"] = []
    for run_dir in run_dirs:
        read_run_config(run_dir)
        saved["notes"] += check_run_csvs(run_dir, saved["loop"]["counters"][0])


def restore(
    saved: dict[str, Any],
    learner: Any,
    replay: ReplayBuffer,
    source: Any,
    evaluator: Any,
    state: LoopState,
    results: Sequence[RunResult],
    trackers: Sequence[EpisodeTracker],
    seeds: Sequence[int],
    folder: Path,
    single: bool,
) -> tuple[list[str], float]:
    """Put a checkpoint back into freshly built parts; returns each member's status and the start
    time that continues wall time. A run folder's member always goes on (a larger --total-steps
    extends it); a group's stopped members get their results and their `final.pt` weights."""
    with restoring(saved.get("file", "the checkpoint")):  # a damaged checkpoint: one line naming it; no file is changed yet
        loop = saved["loop"]
        live = [0] if single else [int(i) for i in loop["live"]]
        statuses = ["running" if i in live else str(loop["status"][i]) for i in range(len(results))]
        for i, (result, run) in enumerate(zip(results, saved["run"], strict=True)):
            restore_result(result, run)
            if i not in live and (result.run_dir / "final.pt").exists():
                result.agent.load_state_dict(load_checkpoint(result.run_dir / "final.pt")["agent"])
        if len(live) < len(results):
            for part in (learner, replay, source, *([evaluator] if evaluator is not None else [])):
                part.keep(live)
        learner.load_state_dict(saved["agent" if "agent" in saved else "members"])
        if saved["buffer"] is not None:
            replay.load_state_dict(saved["buffer"])
        state.env_steps, state.vector_steps, state.next_eval, state.next_log, state.next_checkpoint = loop["counters"]
        position = {"env": saved["env"], "nstep": saved["nstep"], "position": loop["position"], "loop": loop}
        if source.load_state_dict(position, [seeds[i] + state.env_steps for i in live], windows=saved["buffer"] is not None):
            for i in live:
                trackers[i].load_state_dict(loop["episodes"][i])
        for tracker in trackers:
            tracker.log_start = state.env_steps
        restore_rng(saved["rng"])
        start_time = time.perf_counter() - float(saved["wall_seconds"])
    apply_repairs(saved, folder)
    return statuses, start_time


def result_state(result: RunResult) -> dict[str, Any]:
    return {
        "env_steps": result.env_steps,
        "wall_seconds": result.wall_seconds,
        "best_eval_return": result.best_eval_return,
        "solved_at_step": result.solved_at_step,
        "solved_at_seconds": result.solved_at_seconds,
        "eval_history": [list(item) for item in result.eval_history],
    }


def restore_result(result: RunResult, state: dict[str, Any]) -> None:
    result.env_steps, result.wall_seconds = int(state["env_steps"]), float(state["wall_seconds"])
    result.best_eval_return, result.solved_at_step = state["best_eval_return"], state["solved_at_step"]
    result.solved_at_seconds = state["solved_at_seconds"]
    result.eval_history = [(int(step), float(mean)) for step, mean in state["eval_history"]]


def rng_state() -> dict[str, Any]:
    """The process-wide generators (python, numpy, torch) as tensors and plain data."""
    numpy_state: dict[str, Any] = np.random.get_state(legacy=False)
    key = torch.from_numpy(numpy_state["state"]["key"].astype(np.int64))
    return {
        "python": random.getstate(),
        "numpy": {**numpy_state, "state": {"key": key, "pos": numpy_state["state"]["pos"]}},
        "torch": torch.get_rng_state(),
    }


def restore_rng(rng: dict[str, Any]) -> None:
    """Put back what `rng_state` saved (a group checkpoint of format 1 may hold torch's only)."""
    if "python" in rng:
        random.setstate(rng["python"])
    if "numpy" in rng:
        numpy_state = rng["numpy"]
        np.random.set_state(
            {**numpy_state, "state": {"key": numpy_state["state"]["key"].numpy().astype(np.uint32), "pos": numpy_state["state"]["pos"]}}
        )
    torch.set_rng_state(rng["torch"])
