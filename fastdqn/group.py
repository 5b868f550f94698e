"""Many runs in one process: `train_many(cfgs)` trains K seeds, or a grid of values, as one group.

The members share one loop: one stacked act, one env step of K x N envs, one replay write and one
batched update per step (members.py, the member axis of buffer/, member_envs.py), so K runs cost little more
than one. Member k is the single run its config describes: it draws the env seeds, exploration
coins and sample indices that run draws, and writes a run folder with the same files. A member
that reaches its `stop_at_return` (or its `total_steps`) is frozen while the others go on.

Layout: `out_dir/<group>/` holds one run folder per member, `summary.csv` and `returns.png`
(group_report.py), so `fastdqn compare out_dir/<group>` reads it as a group.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastdqn.buffer import ReplayBuffer
from fastdqn.config import SHAPE_FIELDS, Config, ConfigError
from fastdqn.device import resolve_device
from fastdqn.envs import EnvStep, is_atari
from fastdqn.episodes import EpisodeTracker
from fastdqn.evaluate import Evaluation
from fastdqn.finite import NonFiniteEnvOutput
from fastdqn.group_checkpoint import (
    check_member_files,
    group_payload,
    load_group_checkpoint,
    restore_group,
    save_group_checkpoint,
    start_time_from,
    write_group_json,
)
from fastdqn.group_report import GroupProgress, write_summary
from fastdqn.member_envs import MemberEnvs, MemberEvaluator
from fastdqn.members import MemberAgents
from fastdqn.metrics import Metrics
from fastdqn.nstep import MemberNStep
from fastdqn.per import PrioritizedSampler
from fastdqn.run_state import RunResult
from fastdqn.runfolder import claims_run_folder, make_run_folder
from fastdqn.schedules import epsilon_at, linear_schedule
from fastdqn.signals import stop_on_signals
from fastdqn.train import TrainingFailed, TrainingInterrupted, make_run_dir, record_eval, seed_everything

MEMBER_FIELDS = (
    "seed",
    "learning_rate",
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
"""A group's update is always the stacked eager one: `auto` picks it, `on` is refused (`check_group`)."""


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
    if is_atari(first.env_id):
        raise ConfigError(f"many runs in one process (--seeds) do not run ALE envs such as {first.env_id} yet; run the seeds one by one")
    if first.buffer_capacity < first.num_envs * first.n_step:
        raise ConfigError(
            f"buffer_capacity={first.buffer_capacity} is below num_envs x n_step = {first.num_envs * first.n_step}; raise --buffer-capacity"
        )


def _refused_options(cfgs: Sequence[Config]) -> str | None:
    """The first option a group cannot honour, as one line naming it and the alternative; None if none."""
    if any(c.fuse_step == "on" for c in cfgs):
        return "--fuse-step on is a single-run mode; many runs in one process (--seeds) step eagerly: drop --fuse-step or run the seeds one by one"
    if any(c.compile == "on" for c in cfgs):
        return "--compile on is a single-run mode; many runs in one process (--seeds) update eagerly: drop --compile or run the seeds one by one"
    if any(c.actors > 0 for c in cfgs):
        return f"--actors {cfgs[0].actors} trains one run with Ray actors; --seeds trains in one process without them: drop one of the two"
    return None


def _member_key(cfg: Config) -> tuple[Any, ...]:
    return tuple(repr(getattr(cfg, name)) for name in MEMBER_FIELDS)


def member_names(cfgs: Sequence[Config]) -> list[str]:
    """Run folder names inside the group: the values that vary between members, then the seed."""
    varying = [name for name in MEMBER_FIELDS if name not in ("seed", "extra") and len({getattr(c, name) for c in cfgs}) > 1]
    return ["-".join([*(f"{name}_{getattr(c, name)}" for name in varying), f"s{c.seed}"]) for c in cfgs]


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
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    seed_everything(cfg.seed)
    k, n = len(cfgs), cfg.num_envs
    envs = MemberEnvs(cfgs, n, device)
    spaces = envs.spaces
    members = MemberAgents(cfgs, spaces, device)
    replay = ReplayBuffer.for_members(cfgs, spaces.obs_shape, spaces.obs_dtype, device, discount=cfg.n_step > 1)
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
    results = [RunResult(members.agents[i], replay.member(i), [], run_dirs[i]) for i in range(k)]
    live = list(range(k))  # the members still training, in the order of the stacked tensors' slots
    status = ["running"] * k
    obs = envs.reset([c.seed for c in cfgs])
    env_steps = vector_steps = 0
    next_eval, next_log = cfg.eval_every_steps, cfg.log_every_steps
    next_checkpoint = cfg.checkpoint_every_steps or max(c.total_steps for c in cfgs)
    if saved is not None:
        start_time = start_time_from(saved)
        live, status, counters, obs = restore_group(saved, cfgs, members, replay, nstep, envs, evaluator, results)
        env_steps, vector_steps, next_eval, next_log, next_checkpoint = counters
    log_steps = -(-cfg.log_every_steps // n) + 1
    trackers = [EpisodeTracker(n, device, log_steps) for _ in cfgs]
    resume_at = env_steps if saved is not None else None
    metrics = [
        Metrics(r.run_dir, c.total_steps, start_time, resume_at=resume_at, state=saved["metrics"][i] if saved else None, config=c)
        for i, (r, c) in enumerate(zip(results, cfgs, strict=True))
    ]
    for i, (tracker, metric, result) in enumerate(zip(trackers, metrics, results, strict=True)):
        tracker.sink, result.metrics = metric, metric.rows
        if saved is not None and i in live and saved["envs"] is not None:
            tracker.load_state_dict(saved["trackers"][i])
        if i not in live:
            metric.close()
        tracker.log_start = env_steps
    display = GroupProgress(k, max(c.total_steps for c in cfgs)) if progress else None
    learning_starts = np.array([c.learning_starts for c in cfgs])
    total_steps = np.array([c.total_steps for c in cfgs])
    stats: dict[str, torch.Tensor] | None = None
    try:
        with stop_on_signals() as stop:
            while live:
                epsilons = [epsilon_at(cfgs[i], env_steps) for i in live]
                actions = members.act(obs.view(len(live), n, *spaces.obs_shape), epsilons).view(-1)  # (K*N,)
                step = _step(envs, actions, env_steps)
                if nstep is None:
                    rows = step.transitions(obs, actions)
                    row_members = None if step.valid is None else np.flatnonzero(step.valid) // n
                else:
                    rows = nstep.push_step(obs, actions, step)
                    row_members = nstep.row_members
                replay.extend(rows, row_members)
                obs = step.next_obs
                env_steps += n
                vector_steps += 1
                for slot, i in enumerate(live):
                    trackers[i].record(envs.member_step(step, slot), env_steps)
                learning = (env_steps >= learning_starts[live]) & (replay.sizes >= cfg.batch_size)
                if learning.any() and vector_steps % cfg.train_every == 0:
                    stats = _update(cfgs, live, members, replay, learning, env_steps)

                evaluations: list[Evaluation | None] = [None] * len(live)
                diverged = np.zeros(len(live), dtype=bool)
                if evaluator is not None and env_steps >= next_eval:
                    next_eval += cfg.eval_every_steps
                    evaluations = list(evaluator.run(members))
                    diverged = ~_finite(members, stats)
                stopping = env_steps >= total_steps[live]
                for slot, i in enumerate(live):
                    evaluation = None if diverged[slot] else evaluations[slot]  # a diverged member never competes for best.pt
                    if evaluation is not None and record_eval(results[i], cfgs[i], evaluation, env_steps, start_time):
                        members.export(slot).save(results[i].run_dir / "best.pt")
                    stopping[slot] |= results[i].solved_at_step is not None
                failed = np.zeros(len(live), dtype=bool)
                log_now = env_steps >= next_log
                log_due = log_now or stopping.any() or evaluations[0] is not None
                interrupted = stop.requested or (interrupt_at_step is not None and env_steps >= interrupt_at_step)
                # a checkpoint between log rows checks too: a member that diverged since the last row stops
                # alone here, instead of its NaN weights making the whole group's checkpoint refuse
                if log_due or env_steps >= next_checkpoint or interrupted:
                    next_log += cfg.log_every_steps if log_now else 0
                    failed = ~_finite(members, stats)
                    for slot, i in enumerate(live):
                        if failed[slot]:  # this member stops; its best.pt is kept, no final.pt is written over it
                            status[i] = f"failed: NaN/inf loss or weights before env step {env_steps}"
                            results[i].env_steps = env_steps
                            metrics[i].close()
                            continue
                        if log_due:
                            trackers[i].flush(env_steps)
                            member_stats = (
                                None if stats is None or members.updates[slot] == 0 else {key: v[slot] for key, v in stats.items()}
                            )
                            metrics[i].log(env_steps, int(members.updates[slot]), epsilons[slot], member_stats, evaluations[slot])
                    if display is not None and log_due:
                        display.update(env_steps, results, metrics)
                for slot, i in enumerate(live):
                    if stopping[slot] and not failed[slot]:
                        _finish(members, replay, slot, results[i], metrics[i], env_steps, start_time)
                        status[i] = "solved" if results[i].solved_at_step is not None else "total_steps"
                if (stopping | failed).all():
                    live = []
                elif (stopping | failed).any():  # the stopped members leave the stacks: the rest go on at their cost
                    keep = [slot for slot in range(len(live)) if not (stopping[slot] or failed[slot])]
                    obs = obs.view(len(live), n, *spaces.obs_shape)[keep].flatten(0, 1)
                    live = [live[slot] for slot in keep]
                    for part in (members, replay, envs, *(x for x in (nstep, evaluator) if x is not None)):
                        part.keep(keep)
                    stats = None if stats is None else {name: v[keep] for name, v in stats.items()}
                if live and (env_steps >= next_checkpoint or interrupted):
                    next_checkpoint += cfg.checkpoint_every_steps if env_steps >= next_checkpoint else 0
                    for i in live:
                        trackers[i].flush(env_steps)
                    counters = [env_steps, vector_steps, next_eval, next_log, next_checkpoint]
                    payload = group_payload(cfg, members, replay, nstep, envs, obs, live, status, counters, trackers, metrics, results)
                    path = save_group_checkpoint(
                        group_dir, env_steps, cfg.checkpoint_keep, {**payload, "wall_seconds": time.perf_counter() - start_time}
                    )
                    if interrupted:
                        raise TrainingInterrupted(
                            f"{stop.signal_name or 'SIGINT'} at env step {env_steps:,}: checkpoint written to {path}; "
                            f"continue with: fastdqn train --resume {group_dir}",
                            path,
                            128 + (stop.signal_number or 2),
                        )
    finally:
        for i in live:  # stopped members closed theirs
            metrics[i].close()
        if display is not None:
            display.close()
        envs.close()
        if evaluator is not None:
            evaluator.close()
    write_summary(group_dir, cfgs, results, status)
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


def _update(
    cfgs: Sequence[Config], live: Sequence[int], members: MemberAgents, replay: ReplayBuffer, learning: np.ndarray, env_steps: int
) -> dict[str, torch.Tensor]:
    """`gradient_steps` stacked updates; prioritized replay anneals each member's beta and gets new priorities."""
    for slot, i in enumerate(live):
        sampler = replay.samplers[slot]
        if isinstance(sampler, PrioritizedSampler):
            sampler.beta = linear_schedule(cfgs[i].per_beta_start, 1.0, cfgs[i].total_steps, env_steps)
    for _ in range(cfgs[0].gradient_steps):
        batch = replay.sample_members(cfgs[0].batch_size, learning)
        stats = members.update(batch, learning)
        replay.update_member_priorities(batch, stats["td_error"], learning)
    return stats


def _step(envs: MemberEnvs, actions: torch.Tensor, env_steps: int) -> EnvStep:
    try:
        return envs.step(actions)
    except NonFiniteEnvOutput as error:
        raise TrainingFailed(error.at_step(env_steps)) from None
    except Exception as error:
        raise TrainingFailed(f"the env raised during step at env step {env_steps}: {type(error).__name__}: {error}") from error


def _finite(members: MemberAgents, stats: dict[str, torch.Tensor] | None) -> np.ndarray:
    """(K,) bool on the host: member k's weights and last loss are finite (one sync)."""
    finite = torch.isfinite(members.online).all(dim=1)
    if stats is not None:
        finite &= torch.isfinite(stats["loss"])
    return finite.cpu().numpy()


def _finish(
    members: MemberAgents, replay: ReplayBuffer, i: int, result: RunResult, metrics: Metrics, env_steps: int, start_time: float
) -> None:
    """Freeze member i: its final.pt is written and its counters recorded; the others go on."""
    members.export(i).save(result.run_dir / "final.pt")
    result.buffer = replay.member(i)
    result.env_steps = env_steps
    result.wall_seconds = time.perf_counter() - start_time
    metrics.close()
