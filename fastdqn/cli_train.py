"""`fastdqn train` behind its options: the configs built, a run, a group or a resume trained, the result reported.

fastdqn's errors propagate: the command wraps this in `cli.user_errors`, which prints them as one line.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from fastdqn.cli_config import build_config, build_configs, console, option_values
from fastdqn.config import Config, ConfigError

if TYPE_CHECKING:
    from fastdqn.run_state import RunResult


def train_from_cli(
    start_time: float,
    preset_name: str | None,
    config_file: Path | None,
    quiet: bool,
    resume: Path | None,
    overwrite: bool,
    seeds: str | None,
    **values: Any,
) -> None:
    """Train what the options say. `start_time`: the `perf_counter` of the process start, where the OS cannot say."""
    cfgs = build_configs(preset_name, config_file, values, seeds) if resume is None else []
    if resume is not None and (resume / "group.json").is_file():  # a group folder: continue every member
        from fastdqn.group import read_group_configs

        given = sorted(name for name, value in values.items() if value is not None and name != "total_steps")
        if given or seeds is not None:
            raise ConfigError(
                f"--resume continues a group with its saved configs; only --total-steps may change (got {', '.join(given) or '--seeds'})"
            )
        total = values.get("total_steps")
        cfgs = read_group_configs(resume, None if total is None else int(option_values("total_steps", total)[0]))
    elif resume is not None and seeds is not None:
        raise ConfigError(f"--seeds starts a new group; --resume {resume} continues the run there with its own seed (drop --seeds)")
    if len(cfgs) > 1 or seeds is not None or (resume is not None and cfgs):
        _train_group(start_time, cfgs, quiet, overwrite, resume)
        return
    if resume is not None:
        given = sorted(name for name, value in values.items() if value is not None and name != "total_steps")
        if given:
            raise ConfigError(f"--resume continues a run with its saved config; only --total-steps may change (got {', '.join(given)})")
        from fastdqn.resume import read_run_config

        read_run_config(resume)  # a damaged or hand-broken config.json: one line naming it
        cfg = build_config(preset_name, resume / "config.json", values)
    else:
        cfg = cfgs[0]  # built once above: a preset note is printed once
    from fastdqn.loggers import require_loggers
    from fastdqn.sysinfo import process_age_seconds
    from fastdqn.train import train

    require_loggers(cfg.log)  # a missing extra fails here, before a run folder is made
    age = process_age_seconds()
    start = time.perf_counter() - age if age is not None else start_time
    run_training = train
    if cfg.actors > 0:  # Ape-X: Ray actors collect, this process learns (actor_source.py)
        from fastdqn.actor_source import train_distributed

        run_training = train_distributed
    result = run_training(cfg, progress=not quiet, start_time=start, resume=resume, overwrite=overwrite, plot=False)
    _report_run(cfg, result)
    if cfg.save_plot:  # after the report: the plot (matplotlib's import, a render) never delays the result
        from fastdqn.plot import plot_run

        plot_start = time.perf_counter()
        plot_run(result.run_dir)
        console.print(f"returns.png written in {time.perf_counter() - plot_start:.2f} s", highlight=False)


def _train_group(start_time: float, cfgs: list[Config], quiet: bool, overwrite: bool, resume: Path | None = None) -> None:
    """Many runs in one process (group.py): report each member and the group, then plot."""
    from fastdqn.group import plot_group, train_many
    from fastdqn.loggers import require_loggers
    from fastdqn.sysinfo import process_age_seconds

    require_loggers(cfgs[0].log)
    age = process_age_seconds()
    start = time.perf_counter() - age if age is not None else start_time
    results = train_many(cfgs, progress=not quiet, start_time=start, overwrite=overwrite, plot=False, resume=resume)
    group_dir = results[0].run_dir.parent
    table = Table(title=f"fastdqn · {cfgs[0].env_id} · {len(cfgs)} runs in one process")
    for column in ("run", "env steps", "solved at", "best eval", "last eval"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for result in results:
        last = result.eval_history[-1][1] if result.eval_history else None
        table.add_row(
            result.run_dir.name,
            f"{result.env_steps:,}",
            "-" if result.solved_at_step is None else f"{result.solved_at_step:,}",
            "-" if result.best_eval_return is None else f"{result.best_eval_return:.1f}",
            "-" if last is None else f"{last:.1f}",
        )
    console.print(table)
    wall = max(r.wall_seconds for r in results)
    solved = sum(r.solved_at_step is not None for r in results)
    console.print(f"{solved}/{len(results)} solved; wall {wall:.2f} s (process start included); group folder {group_dir}", highlight=False)
    if cfgs[0].save_plot:
        plot_start = time.perf_counter()
        plot_group(group_dir, results)
        console.print(f"returns.png written for each run and the group in {time.perf_counter() - plot_start:.2f} s", highlight=False)


def _report_run(cfg: Config, result: RunResult) -> None:
    table = Table(title=f"fastdqn · {cfg.env_id} · seed {cfg.seed}", show_header=False)
    table.add_row("env steps", f"{result.env_steps:,}")
    table.add_row("gradient steps", f"{result.agent.updates:,}")
    table.add_row("wall time", f"{result.wall_seconds:.2f} s (process start included)")
    table.add_row("env steps / s", f"{result.env_steps / result.wall_seconds:,.0f}")
    if cfg.env_id.rpartition(":")[2].startswith("ALE/"):
        table.add_row("frames / s", f"{4 * result.env_steps / result.wall_seconds:,.0f} (4 emulator frames per env step)")
    table.add_row("device", f"{result.agent.device} ({'compiled' if result.agent.compiled else 'eager'} update)")
    best = "-" if result.best_eval_return is None else f"{result.best_eval_return:.1f}"
    table.add_row("best greedy eval", best)
    if result.solved_at_step is not None:
        table.add_row("solved", f"at {result.solved_at_step:,} env steps, {result.solved_at_seconds:.2f} s")
    table.add_row("run folder", str(result.run_dir))
    console.print(table)
