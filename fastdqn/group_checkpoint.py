"""Resumable group checkpoints: `group/checkpoints/step-N.pt` holds the whole group at one env step.

What a single run's checkpoint holds (resume.py), for every member at once: the stacked networks,
targets and Adam state of the members still training, their replay rows, n-step windows, env states,
sample and exploration generators, episode bookkeeping and metric state, and for every member (still
training or stopped) its results so far. `group.json` in the group folder keeps the members'
configs, so `fastdqn train --resume GROUP` rebuilds the group and continues it. Written atomically,
loaded with `weights_only=True`, as a single run's are.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from fastdqn.buffer import ReplayBuffer
from fastdqn.checkpoint import (
    CheckpointError,
    apply_repairs,
    load_checkpoint,
    newest_intact_checkpoint,
    restoring,
    save_atomic,
)
from fastdqn.config import Config, ConfigError
from fastdqn.episodes import EpisodeTracker
from fastdqn.member_envs import MemberEnvs, MemberEvaluator
from fastdqn.members import MemberAgents
from fastdqn.metrics import Metrics, check_run_csvs
from fastdqn.nstep import MemberNStep
from fastdqn.resume import restore_rng, rng_state
from fastdqn.run_state import RunResult

FORMAT = "fastdqn-group-1"


def write_group_json(group_dir: Path, cfgs: list[Config]) -> None:
    (group_dir / "group.json").write_text(json.dumps({"format": FORMAT, "members": [asdict(c) for c in cfgs]}, indent=1, sort_keys=True))


def is_group(folder: Path) -> bool:
    return (folder / "group.json").is_file()


def read_group_configs(group_dir: Path, total_steps: int | None = None) -> list[Config]:
    """The members' configs as the group started them (`total_steps` extends every member); a damaged
    group.json is refused in one line naming it."""
    path = group_dir / "group.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        members = saved["members"] if isinstance(saved, dict) and saved.get("format") == FORMAT else None
        if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
            raise ValueError(f"no list of member configs under a {FORMAT!r} format")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as error:
        raise ConfigError(f"--resume {group_dir}: its group.json cannot be read ({error}); put back the file") from None
    cfgs = []
    for index, values in enumerate(members):
        try:
            cfgs.append(Config.from_dict(values))
        except (ValueError, TypeError) as error:  # ConfigError is a ValueError
            raise ConfigError(f"--resume {group_dir}: {path}, member {index}: {str(error).strip()[:300]}; fix that value") from None
    return cfgs if total_steps is None else [c.replace(total_steps=total_steps) for c in cfgs]


def save_group_checkpoint(group_dir: Path, env_steps: int, keep: int, payload: dict[str, Any]) -> Path:
    path = save_atomic({"format": FORMAT, **payload}, group_dir / "checkpoints" / f"step-{env_steps:012d}.pt")
    for old in sorted((group_dir / "checkpoints").glob("step-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return path


GROUP_SECTIONS = ("members", "replay", "nstep", "envs", "obs", "live", "status", "counters", "trackers", "metrics", "results", "rng")


def load_group_resumable(path: Path) -> dict[str, Any]:
    """A group checkpoint, refused (CheckpointError) unless it is readable and holds every section a resume puts back."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise CheckpointError(f"{path} is not a readable fastdqn group checkpoint: {str(error).strip().splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fastdqn group checkpoint")
    missing = [name for name in (*GROUP_SECTIONS, "wall_seconds") if name not in payload]
    counters = payload.get("counters")
    if not isinstance(counters, list) or len(counters) != 5 or not all(isinstance(c, int) for c in counters):
        missing.append("counters")
    from fastdqn.resume import METRICS_KEYS

    metrics = payload.get("metrics")
    if not isinstance(metrics, list) or not all(isinstance(m, dict) and all(k in m for k in METRICS_KEYS) for m in metrics):
        missing.append("metrics")  # put back after the members' CSV files are cut: checked before
    if missing:
        raise CheckpointError(f"{path} is incomplete (no {', '.join(dict.fromkeys(missing))})")
    return payload


def load_group_checkpoint(group_dir: Path, total_steps: int) -> dict[str, Any]:
    """The newest intact group checkpoint (an unreadable newest one gives way to the next older, said in
    one line once every file is checked), refused in one line when it cannot be continued. Its `file` names it."""
    payload = newest_intact_checkpoint(group_dir, load_group_resumable)
    if payload["counters"][0] >= total_steps:
        raise ConfigError(f"{group_dir} already finished at {payload['counters'][0]:,} env steps; pass a larger --total-steps to extend it")
    return payload


def check_member_files(saved: dict[str, Any], run_dirs: list[Path]) -> None:
    """Check every member's config.json, metrics.csv and episodes.csv before a resume changes any file
    of the group: one refused on its last member leaves the others' files as they were. The repairs
    they need are noted in `saved` for `apply_repairs`."""
    from fastdqn.resume import read_run_config

    saved["notes"] = []
    for run_dir in run_dirs:
        read_run_config(run_dir)
        saved["notes"] += check_run_csvs(run_dir, saved["counters"][0])


def result_state(result: Any) -> dict[str, Any]:
    return {
        "env_steps": result.env_steps,
        "wall_seconds": result.wall_seconds,
        "best_eval_return": result.best_eval_return,
        "solved_at_step": result.solved_at_step,
        "solved_at_seconds": result.solved_at_seconds,
        "eval_history": [list(item) for item in result.eval_history],
    }


def restore_result(result: Any, state: dict[str, Any]) -> None:
    result.env_steps, result.wall_seconds = int(state["env_steps"]), float(state["wall_seconds"])
    result.best_eval_return, result.solved_at_step = state["best_eval_return"], state["solved_at_step"]
    result.solved_at_seconds = state["solved_at_seconds"]
    result.eval_history = [(int(step), float(mean)) for step, mean in state["eval_history"]]


def start_time_from(payload: dict[str, Any]) -> float:
    """A start time that continues the group's wall time from the checkpoint."""
    return time.perf_counter() - float(payload["wall_seconds"])


def group_payload(
    cfg: Config,
    members: MemberAgents,
    replay: ReplayBuffer,
    nstep: MemberNStep | None,
    envs: MemberEnvs,
    obs: torch.Tensor,
    live: list[int],
    status: list[str],
    counters: list[int],
    trackers: list[EpisodeTracker],
    metrics: list[Metrics],
    results: list[RunResult],
) -> dict[str, Any]:
    """The whole group at this step: the stacks of the members still training, every member's results."""
    for metric in metrics:
        metric.flush()  # the rows up to this checkpoint outlive a crash right after it
    return {
        "members": members.state_dict(),
        "replay": replay.state_dict() if cfg.save_buffer else None,
        "nstep": nstep.state_dict() if nstep is not None else None,
        "envs": envs.state_dict(),
        "obs": obs.cpu().clone(),
        "live": list(live),
        "status": list(status),
        "counters": counters,
        "trackers": [t.state_dict() for t in trackers],
        "metrics": [m.state_dict() for m in metrics],
        "results": [result_state(r) for r in results],
        "rng": rng_state(),  # python, numpy and torch, as a single run saves them
    }


def restore_group(
    saved: dict[str, Any],
    cfgs: list[Config],
    members: MemberAgents,
    replay: ReplayBuffer,
    nstep: MemberNStep | None,
    envs: MemberEnvs,
    evaluator: MemberEvaluator | None,
    results: list[RunResult],
) -> tuple[list[int], list[str], list[int], torch.Tensor]:
    """Put a group checkpoint back into freshly built parts; returns (live, status, counters, obs).

    Stopped members get their results and their `final.pt` weights; the stacks keep the live ones.
    """
    with restoring(saved["file"]):  # a damaged checkpoint: one line naming it; no file is changed yet
        live, status, counters = list(saved["live"]), list(saved["status"]), list(saved["counters"])
        for i, state in enumerate(saved["results"]):
            restore_result(results[i], state)
            if i not in live and (results[i].run_dir / "final.pt").exists():
                members.agents[i].load_state_dict(load_checkpoint(results[i].run_dir / "final.pt")["agent"])
        for part in (members, replay, envs, *(x for x in (nstep, evaluator) if x is not None)):
            part.keep(live)
        members.load_state_dict(saved["members"])
        if saved["replay"] is not None:
            replay.load_state_dict(saved["replay"])
            if nstep is not None:  # pending n-step rows only make sense with the rows before them
                nstep.load_state_dict(saved["nstep"])
        if saved["envs"] is not None:
            envs.load_state_dict(saved["envs"])
            obs = saved["obs"].to(envs.device)
        else:  # envs whose state cannot be saved start fresh episodes, seeded apart from the first start
            obs = envs.reset([cfgs[i].seed + counters[0] for i in live])
        if isinstance(saved["rng"], torch.Tensor):  # written before groups saved every generator: torch's only
            torch.set_rng_state(saved["rng"])
        else:
            restore_rng(saved["rng"])
        restored = live, status, counters, obs
    apply_repairs(saved, results[0].run_dir.parent)
    return restored
