"""Many runs in one process: `train_many(cfgs)` trains K seeds, or a grid of values, as one group.

The members share one loop: one stacked act, one env step of K x N envs, one replay write and one
batched update per step (members.py, the member axis of buffer/, member_envs.py), so K runs cost little more
than one. Member k is the single run its config describes: it draws the env seeds, exploration
coins and sample indices that run draws, and writes a run folder with the same files. A member
that reaches its `stop_at_return` (or its `total_steps`) is frozen while the others go on.

Layout: `out_dir/<group>/` holds one run folder per member, `group.json` (the members' configs, which
`fastdqn train --resume GROUP` rebuilds the group from), `checkpoints/` (resume.py), `summary.csv`
and `returns.png` (group_report.py), so `fastdqn compare out_dir/<group>` reads it as a group.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastdqn import engine
from fastdqn.buffer import ReplayBuffer
from fastdqn.config import SHAPE_FIELDS, Config, ConfigError
from fastdqn.device import resolve_device
from fastdqn.engine import Member, Parts, torch_threads
from fastdqn.episodes import EpisodeTracker
from fastdqn.frames import frame_storage
from fastdqn.group_report import GroupProgress, write_summary
from fastdqn.member_envs import MemberEnvs, MemberEvaluator
from fastdqn.members import MemberAgents
from fastdqn.metrics import Metrics
from fastdqn.nstep import MemberNStep
from fastdqn.resume import check_member_files, load_group_checkpoint, restore
from fastdqn.run_state import LoopState, RunResult
from fastdqn.runfolder import claims_run_folder, make_run_folder
from fastdqn.sources import MemberSource
from fastdqn.train import make_run_dir, seed_everything

MEMBER_FIELDS = (
    "seed",
    "learning_rate",
    "learning_rate_end",
    "adam_eps",
    "gamma",
    "epsilon_start",
    "epsilon_end",
    "epsilon_decay_steps",
    "epsilon_late",
    "epsilon_late_steps",
    "target_update_every",
    "tau",
    "max_grad_norm",
    "grad_clip_value",
    "learning_starts",
    "total_steps",
    "stop_at_return",
    "extra",
)
"""Fields each member may set on its own."""
IGNORED_FIELDS = ("compile", "compile_mode", "fuse_step")
"""Read from the first member only: `--compile` compiles the stacked MLP update as a single run's
(`auto`: on CUDA); `--fuse-step on` is refused (`check_group`), `auto` steps eagerly."""


def check_group(cfgs: Sequence[Config]) -> None:
    """Refuse, in one line naming the fields and the fix, a group that cannot train as one."""
    if not cfgs:
        raise ConfigError("train_many needs at least one config")
    first = cfgs[0]
    shaped = [name for name in SHAPE_FIELDS if len({getattr(c, name) for c in cfgs}) > 1]
    if shaped:
        raise ConfigError(f"{', '.join(shaped)} change tensor shapes, so one group takes one value of each; run one group per value")
    fixed = [
        f.name
        for f in dataclasses.fields(Config)
        if f.name not in (*SHAPE_FIELDS, *MEMBER_FIELDS, *IGNORED_FIELDS)
        and any(getattr(c, f.name) != getattr(first, f.name) for c in cfgs)
    ]
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} must be the same for every member of a group; give one value, or train separate groups")
    if len({_member_key(c) for c in cfgs}) < len(cfgs):
        raise ConfigError("two members of the group have the same settings; give each seed (and grid value) once")
    if first.n_step > 1 and len({c.gamma for c in cfgs}) > 1:
        raise ConfigError(f"n_step={first.n_step} folds gamma into the stored rows, so a group with --n-step > 1 takes one --gamma")
    refused = _refused_options(cfgs)
    if refused:
        raise ConfigError(refused)
    if first.buffer_capacity < first.num_envs * first.n_step:
        raise ConfigError(
            f"buffer_capacity={first.buffer_capacity} is below num_envs x n_step = {first.num_envs * first.n_step}; raise --buffer-capacity"
        )


def _refused_options(cfgs: Sequence[Config]) -> str | None:
    """The first option a group cannot honour, as one line naming it and the alternative; None if none."""
    if any(c.fuse_step == "on" for c in cfgs):
        return "--fuse-step on is a single-run mode; many runs in one process (--seeds) step eagerly: drop --fuse-step or run the seeds one by one"
    if any(c.actors > 0 for c in cfgs):
        return f"--actors {cfgs[0].actors} trains one run with Ray actors; --seeds trains in one process without them: drop one of the two"
    return None


def _member_key(cfg: Config) -> tuple[Any, ...]:
    return tuple(repr(getattr(cfg, name)) for name in MEMBER_FIELDS)


def member_names(cfgs: Sequence[Config]) -> list[str]:
    """Run folder names inside the group: the values that vary between members, then the seed."""
    varying = [name for name in MEMBER_FIELDS if name not in ("seed", "extra") and len({getattr(c, name) for c in cfgs}) > 1]
    return ["-".join([*(f"{name}_{getattr(c, name)}" for name in varying), f"s{c.seed}"]) for c in cfgs]


GROUP_JSON_FORMAT = "fastdqn-group-1"
"""The format of group.json (the members' configs), not of a checkpoint."""


def write_group_json(group_dir: Path, cfgs: list[Config]) -> None:
    (group_dir / "group.json").write_text(
        json.dumps({"format": GROUP_JSON_FORMAT, "members": [dataclasses.asdict(c) for c in cfgs]}, indent=1, sort_keys=True)
    )


def read_group_configs(group_dir: Path, total_steps: int | None = None) -> list[Config]:
    """The members' configs as the group started them (`total_steps` extends every member); a damaged
    group.json is refused in one line naming it."""
    path = group_dir / "group.json"
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        members = saved["members"] if isinstance(saved, dict) and saved.get("format") == GROUP_JSON_FORMAT else None
        if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
            raise ValueError(f"no list of member configs under a {GROUP_JSON_FORMAT!r} format")
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as error:
        raise ConfigError(f"--resume {group_dir}: its group.json cannot be read ({error}); put back the file") from None
    cfgs = []
    for index, values in enumerate(members):
        try:
            cfgs.append(Config.from_dict(values))
        except (ValueError, TypeError) as error:  # ConfigError is a ValueError
            raise ConfigError(f"--resume {group_dir}: {path}, member {index}: {str(error).strip()[:300]}; fix that value") from None
    return cfgs if total_steps is None else [c.replace(total_steps=total_steps) for c in cfgs]


@claims_run_folder(member_names)  # names, memory, the group folder and its lock, before anything is built
def train_many(
    cfgs: Sequence[Config],
    progress: bool = False,
    start_time: float | None = None,
    overwrite: bool = False,
    interrupt_at_step: int | None = None,
    plot: bool | None = None,
    resume: Path | None = None,
) -> list[RunResult]:
    """Train every config of `cfgs` as one group; returns one `RunResult` per member, in order.

    Args:
        cfgs: one config per member; they may differ in `MEMBER_FIELDS` only (`check_group`).
        interrupt_at_step: behave as if SIGINT arrived at this env step (tests).
        plot: write each member's and the group's `returns.png` (default: `cfgs[0].save_plot`).
        resume: a group folder to continue from its newest checkpoint (`cfgs` from its group.json,
            `read_group_configs`; only total_steps may differ).
    """
    start_time = time.perf_counter() if start_time is None else start_time
    saved = load_group_checkpoint(resume, max(c.total_steps for c in cfgs)) if resume is not None else None
    check_group(cfgs)
    cfg = cfgs[0]
    device = resolve_device(cfg.device)
    torch_threads(cfg)
    seed_everything(cfg.seed)
    k, n = len(cfgs), cfg.num_envs
    envs = MemberEnvs(cfgs, n, device)
    spaces = envs.spaces
    learner = MemberAgents(cfgs, spaces, device)
    frames = frame_storage(cfg, spaces.obs_shape, spaces.obs_dtype, device, members=k)  # ALE ids, or --replay-storage frames
    replay = ReplayBuffer.for_members(cfgs, spaces.obs_shape, spaces.obs_dtype, device, discount=cfg.n_step > 1, storage=frames)
    nstep = MemberNStep(cfg.n_step, cfg.gamma, k * n, n, spaces.obs_shape, spaces.obs_dtype, device) if cfg.n_step > 1 else None
    evaluator = MemberEvaluator(cfgs, device) if cfg.eval_every_steps else None
    group_dir = resume if resume is not None else make_run_folder(cfg, "group", overwrite)
    if resume is None:
        write_group_json(group_dir, list(cfgs))
    names = member_names(cfgs)
    cfgs = [c.replace(out_dir=str(group_dir), run_name=name) for c, name in zip(cfgs, names, strict=True)]
    run_dirs = [group_dir / name if resume is not None else make_run_dir(c, overwrite) for c, name in zip(cfgs, names, strict=True)]
    if resume is not None and saved is not None:
        check_member_files(saved, run_dirs)  # every member's files, before any of them is cut back
    results = [RunResult(learner.agents[i], replay.member(i), [], run_dirs[i]) for i in range(k)]
    trackers = [EpisodeTracker(n, device, -(-cfg.log_every_steps // n) + 1) for _ in cfgs]
    source = MemberSource(learner, envs, replay, nstep, trackers, cfg.train_every)
    source.reset([c.seed for c in cfgs])
    statuses = ["running"] * k
    state = LoopState(0, 0, cfg.eval_every_steps, cfg.log_every_steps, cfg.checkpoint_every_steps or max(c.total_steps for c in cfgs))
    if saved is not None:
        seeds = [c.seed for c in cfgs]
        statuses, start_time = restore(saved, learner, replay, source, evaluator, state, results, trackers, seeds, group_dir, single=False)
    resume_at = state.env_steps if saved is not None else None
    group: list[Member] = []
    for i, (c, result, tracker) in enumerate(zip(cfgs, results, trackers, strict=True)):
        metrics = Metrics(
            result.run_dir, c.total_steps, start_time, resume_at=resume_at, state=saved["metrics"][i] if saved else None, config=c
        )
        tracker.sink, result.metrics = metrics, metrics.rows
        if statuses[i] != "running":
            metrics.close()
        group.append(Member(c, result, metrics, tracker, statuses[i]))

    display = GroupProgress(k, max(c.total_steps for c in cfgs)) if progress else None
    engine.run(
        Parts(learner, source, replay, evaluator, group, group_dir, single=False, display=display),
        state,
        start_time,
        interrupt_at_step,
    )
    write_summary(group_dir, cfgs, results, [m.status for m in group])
    if cfg.save_plot if plot is None else plot:
        plot_group(group_dir, results)
    return results


def plot_group(group_dir: Path, results: Sequence[RunResult]) -> None:
    """Each member's `returns.png`, then the group's."""
    from fastdqn.group_report import plot_group_returns
    from fastdqn.plot import plot_run

    for result in results:
        plot_run(result.run_dir)
    plot_group_returns(group_dir, [r.run_dir for r in results])
