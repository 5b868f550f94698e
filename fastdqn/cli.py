"""The `fastdqn` command: train, eval, plot, info. `train`'s options are generated from `Config`."""

from __future__ import annotations

import time

# Wall times count from the process start, interpreter start-up and imports included; where the
# OS does not say when that was, from this module's import. Nothing here imports torch: `--help` and
# `info` stay fast, and `train` pays for torch when it imports `fastdqn.train`.
START = time.perf_counter()

import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec  # noqa: E402

import typer  # noqa: E402
from rich.table import Table  # noqa: E402

from fastdqn.cli_config import (  # noqa: E402
    build_config,
    config_source_options,
    console,
    err_console,
    field_docs,
    keyword,
    train_options,
)
from fastdqn.cli_train import train_from_cli  # noqa: E402
from fastdqn.config import FastDQNError  # noqa: E402

if TYPE_CHECKING:
    pass

app = typer.Typer(add_completion=False, no_args_is_help=True, help="fastdqn: fast DQN on Gymnasium vector envs.")


def fail(message: str, code: int = 2) -> typer.Exit:
    from rich.markup import escape

    # escaped: a message such as pip install -e ".[wandb]" must not lose its brackets to rich markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """The errors a user can cause or fix, as one line and an exit code, never a traceback.

    fastdqn's own errors carry their code; an operating-system error a user causes (disk full,
    read-only, permission denied, a name too long) exits 74; others are bugs and keep their traceback.
    """
    from fastdqn.runfolder import user_os_error

    try:
        yield
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
    except OSError as error:
        converted = user_os_error(error)
        if converted is None:
            raise
        raise fail(str(converted), converted.exit_code) from None


P = ParamSpec("P")


def guarded(command: Callable[P, None]) -> Callable[P, None]:
    """A command run inside `user_errors`."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with user_errors():
            command(*args, **kwargs)

    return run


def _make_train_command() -> Callable[..., None]:
    def train_command(**kwargs: Any) -> None:
        with user_errors():
            train_from_cli(START, **kwargs)  # the fixed options below and the Config fields, by name

    fixed = [
        *config_source_options(),
        keyword("quiet", False, Annotated[bool, typer.Option("--quiet", help="No progress bar.")]),
        keyword(
            "resume", None, Annotated[Path | None, typer.Option("--resume", help="Continue this run folder from its newest checkpoint.")]
        ),
        keyword("overwrite", False, Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder of the same name.")]),
        keyword(
            "seeds",
            None,
            Annotated[
                str | None,
                typer.Option(
                    "--seeds",
                    help="Train these seeds together in one process, e.g. 1-8 or 1,4,9; with an option given several values "
                    "(--learning-rate 1e-3,5e-3) every combination trains together.",
                ),
            ],
        ),
    ]
    train_command.__dict__["__signature__"] = inspect.Signature(fixed + train_options())  # typer reads the options from it
    train_command.__doc__ = (
        "Train a DQN agent; every option defaults to its preset's value: --preset, else the preset of --env "
        "(`fastdqn presets` lists them), else the general `default` preset. [cartpole preset: X] is CartPole-v1's."
    )
    return train_command


app.command("train")(_make_train_command())


def _make_config_command() -> Callable[..., None]:
    def config_command(preset_name: str | None, config_file: Path | None, **values: Any) -> None:
        from fastdqn.tomlconfig import to_toml

        try:
            cfg = build_config(preset_name, config_file, values)
            header = f"fastdqn config (preset {cfg.preset}); train with: fastdqn train --config FILE [options that override it]"
            text = to_toml(cfg, field_docs(), header)
        except FastDQNError as error:
            raise fail(str(error), error.exit_code) from None
        with user_errors():
            sys.stdout.write(text)

    config_command.__dict__["__signature__"] = inspect.Signature(config_source_options() + train_options())
    config_command.__doc__ = "Print a complete TOML config (a preset, a file, options on top): fastdqn config --preset cartpole > run.toml"
    return config_command


app.command("config")(_make_config_command())


@app.command("presets")
def presets_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per preset, one a line.")] = False,
) -> None:
    """List the presets: the env ids each is picked for, its budget (total_steps) and the result it was validated at."""
    from fastdqn.presets import GENERAL, info, names

    try:
        infos = [info(name) for name in names()]
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
    if as_json:
        for item in infos:
            sys.stdout.write(json.dumps(dataclasses.asdict(item)) + "\n")
        return
    table = Table(title="fastdqn presets (fastdqn/presets/*.toml; `fastdqn config --preset NAME` prints one)")
    for column in ("preset", "env ids", "budget", "validated at that budget"):
        table.add_column(column, justify="right" if column == "budget" else "left", overflow="fold")
    for item in infos:
        env_ids = ", ".join(item.env_ids) or ("any other" if item.name == GENERAL else "by name only")
        table.add_row(item.name, env_ids, f"{item.budget:,}", item.validated)
    console.print(table)


@app.command("eval")
@guarded
def eval_command(
    run: Annotated[Path, typer.Argument(help="A run folder (its best evaluated policy, or --policy final) or a checkpoint file.")],
    policy: Annotated[
        str,
        typer.Option("--policy", help="In a run folder: best (best.pt, the best greedy evaluation) or final (final.pt, where it ended)."),
    ] = "best",
    episodes: Annotated[int | None, typer.Option("--episodes", "-n", help="Greedy episodes [default: 20; 1 with --video].")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the evaluation envs.")] = 12345,
    env: Annotated[str | None, typer.Option("--env", help="Env id (default: the one it was trained on).")] = None,
    device: Annotated[str | None, typer.Option(help="Device (default: the training device, cpu without CUDA).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"policy", "checkpoint", "mean", "std", "returns"} as JSON (and "videos" with --video).')
    ] = False,
    video: Annotated[
        Path | None, typer.Option("--video", help="Record each episode to DIR/<run>-episode-<i>.mp4 (raw frames; the `video` extra).")
    ] = None,
    video_max_steps: Annotated[
        int | None, typer.Option("--video-max-steps", help="With --video: cut each episode after N agent steps.")
    ] = None,
) -> None:
    """Greedy evaluation of a trained agent: prints mean ± std of the episode returns (with --video, one mp4 per episode)."""
    from fastdqn.agent import DQNAgent
    from fastdqn.checkpoint import find_checkpoint
    from fastdqn.evaluate import evaluate

    episodes = episodes if episodes is not None else (1 if video is not None else 20)
    if episodes < 1:
        raise fail(f"--episodes {episodes} must be at least 1")
    if policy not in ("best", "final"):
        raise fail(f"--policy {policy!r} is not one of best, final")
    videos: list[Any] = []
    try:
        path = find_checkpoint(run, policy)
        if video is not None:
            from fastdqn.video import record_episodes, require_video

            require_video()  # before loading anything
            agent = DQNAgent.load(path, device=device)
            prefix = (run if run.is_dir() else run.parent).resolve().name or "fastdqn"
            videos = record_episodes(agent, env or agent.cfg.env_id, video, episodes, seed, prefix, video_max_steps)
            returns = [v.episode_return for v in videos]
        else:
            agent = DQNAgent.load(path, device=device)
            returns = evaluate(agent, env or agent.cfg.env_id, episodes=episodes, seed=seed)
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
    mean = sum(returns) / len(returns)
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / len(returns))
    evaluated = path.stem if path.stem in ("best", "final") else "checkpoint"  # which policy: best.pt, final.pt, or a file given
    if as_json:
        report: dict[str, Any] = {"policy": evaluated, "checkpoint": str(path), "mean": mean, "std": std, "returns": returns}
        if video is not None:
            report["videos"] = [{"path": str(v.path), "return": v.episode_return, "steps": v.steps, "cut": v.cut} for v in videos]
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        for v in videos:
            cut = f" (cut at {v.steps:,} steps)" if v.cut else ""
            console.print(f"{v.path}: return {v.episode_return:.2f}, {v.steps:,} steps{cut}", highlight=False, soft_wrap=True)
        fell_back = " (no best.pt: no evaluation ran)" if policy == "best" and evaluated == "final" else ""
        console.print(
            f"{evaluated} policy{fell_back}, {path}: {episodes} greedy episodes on {env or agent.cfg.env_id}: {mean:.2f} ± {std:.2f}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("plot")
@guarded
def plot_command(
    run: Annotated[Path, typer.Argument(help="A run folder.")],
    out: Annotated[Path | None, typer.Option(help="PNG path (default: RUN/returns.png).")] = None,
) -> None:
    """Plot training returns (with the tutorial's 0.9 smoothing) and greedy evaluations to a PNG."""
    from fastdqn.plot import plot_run

    if not run.is_dir():
        raise fail(f"{run} is not a run folder")
    try:
        path = plot_run(run, out)
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(f"wrote {path}")


@app.command("compare")
@guarded
def compare_command(
    paths: Annotated[list[Path], typer.Argument(help="Run folders, and group folders holding run folders (e.g. one per seed).")],
    out: Annotated[Path, typer.Option(help="PNG path.")] = Path("compare.png"),
    solved_at: Annotated[
        float | None, typer.Option("--solved-at", help="Return that counts as solved [default: each run's --stop-at-return].")
    ] = None,
) -> None:
    """One PNG of evaluation and training returns against env steps (groups: mean and min-max band), and a table."""
    from fastdqn.compare import load_entry, plot_compare, summary_row

    try:
        entries = [load_entry(path) for path in paths]
        rows = [summary_row(entry, solved_at) for entry in entries]
        plot_compare(entries, out)
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
    table = Table(title="fastdqn compare" + ("" if solved_at is None else f" (solved: eval return >= {solved_at:g})"))
    table.add_column("run")
    table.add_column("runs", justify="right")
    for name in rows[0]:
        table.add_column(name, justify="right")
    for entry, row in zip(entries, rows, strict=True):
        table.add_row(entry.label + ("/" if entry.is_group else ""), str(len(entry.runs)), *row.values())
    console.print(table)
    console.print(f"wrote {out}", highlight=False, soft_wrap=True)


@app.command("info")
@guarded
def info_command(
    with_torch: Annotated[
        bool,
        typer.Option("--torch", help="Import torch (~2 s) to read its thread count; a CUDA or ROCm build always does, for its devices."),
    ] = False,
) -> None:
    """Versions, devices and threads: what to paste into a bug report or next to a benchmark."""
    from fastdqn.sysinfo import needs_torch_for_devices, system_info

    table = Table(show_header=False, title="fastdqn info")
    for key, value in system_info(import_torch=with_torch or needs_torch_for_devices()).items():
        table.add_row(key, str(value))
    console.print(table)


def main() -> None:
    app()
