"""The `fastdqn` command: train, eval, plot, info. `train`'s options are generated from `Config`."""

from __future__ import annotations

import time

# Wall times count from the process start, interpreter start-up and imports included; where the
# OS does not say when that was, from this module's import. Nothing here imports torch: `--help` and
# `info` stay fast, and `train` pays for torch when it imports `fastdqn.train`.
START = time.perf_counter()

import ast  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import functools  # noqa: E402
import inspect  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import typing  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, cast  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from fastdqn import config as config_module  # noqa: E402
from fastdqn.config import SHAPE_FIELDS, Config, ConfigError, FastDQNError, preset  # noqa: E402

if TYPE_CHECKING:
    from fastdqn.run_state import RunResult

app = typer.Typer(add_completion=False, no_args_is_help=True, help="fastdqn: fast DQN on Gymnasium vector envs.")
console = Console()
err_console = Console(stderr=True)

# Option names that differ from the field names (the short forms users type).
FLAG_NAMES = {"env_id": ["--env", "--env-id"], "out_dir": ["--out", "--out-dir"]}
NOT_OPTIONS = {"extra", "preset"}


def field_docs() -> dict[str, str]:
    """Attribute docstrings of `Config`, read from its source (Python keeps none at runtime)."""
    tree = ast.parse(inspect.getsource(config_module))
    docs: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Config":
            for stmt, nxt in itertools.pairwise(node.body):
                if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)):
                    continue
                if isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                    docs[stmt.target.id] = nxt.value.value.strip()
    return docs


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


def _parse_optional_float(name: str, text: str) -> float | None:
    if text.strip().lower() in ("none", "off", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a number; pass a number or 'none'") from None


def _train_options() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(Config)
    docs = field_docs()
    cartpole = preset("cartpole")  # CartPole-v1's, the env a bare `fastdqn train` trains on
    parameters = []
    for f in dataclasses.fields(Config):
        if f.name in NOT_OPTIONS:
            continue
        hint = hints[f.name]
        base: Any = bool if hint is bool else str  # numbers arrive as text: `--learning-rate 1e-3,5e-3` is a grid (build_configs)
        if hint == tuple[str, ...]:
            base = list[str]  # a repeatable option: --log tensorboard --log wandb (or --log tensorboard,wandb)
        metavar = {int: "INTEGER", float: "FLOAT"}.get(hint)
        flags = FLAG_NAMES.get(f.name, ["--" + f.name.replace("_", "-")])
        if base is bool:
            flags = [f"{flags[0]}/--no-{flags[0][2:]}"]
        default_value = getattr(cartpole, f.name)
        if isinstance(default_value, tuple):
            default_value = ", ".join(default_value) or "none"
        help_text = f"{docs.get(f.name, '')} [cartpole preset: {default_value}]"
        # built at runtime from the field's type, so it goes through Any rather than a static annotation
        option = typer.Option(*flags, help=help_text, show_default=False, metavar=f"{metavar}[,...]" if metavar else None)
        annotation = cast(Any, Annotated)[base | None, option]
        parameters.append(_keyword(f.name, None, annotation))
    return parameters


def preset_for(preset_name: str | None, env_id: str | None) -> str:
    """`--preset` if given, else the preset that claims the env id (CartPole-v1's when none is given),
    else the general default, with a one-line note on stderr saying so."""
    if preset_name is not None:
        return preset_name
    from fastdqn.presets import GENERAL, preset_for_env

    env_id = env_id or Config().env_id
    found = preset_for_env(env_id)
    if found is None:
        from fastdqn.envs.spaces import find_spec

        find_spec(env_id)  # an unknown id is refused in its own line first, never announced as "no preset"
        err_console.print(
            f"note: no preset for {env_id}; using the general `{GENERAL}` preset (`fastdqn presets` lists them; --preset NAME picks one)",
            highlight=False,
            soft_wrap=True,
        )
        return GENERAL
    return found


def build_config(preset_name: str | None, config_file: Path | None, values: dict[str, Any]) -> Config:
    """The preset (or a saved config.json, or a TOML file over its preset), then every option the user gave on top of it.

    With no --preset, the preset is the one the env id picks (`--env`, else the file's env_id)."""
    file_values: dict[str, Any] = {}
    given_env = values.get("env_id")
    env_id = None if given_env is None else str(given_env)
    if config_file is None:
        cfg = preset(preset_for(preset_name, env_id))
    elif config_file.suffix not in (".toml", ".json"):
        raise ConfigError(
            f"--config {config_file}: the name must end in .toml (a TOML file, see `fastdqn config`) or .json (a run's config.json)"
        )
    elif config_file.suffix == ".toml":
        from fastdqn.tomlconfig import read_toml

        file_values = read_toml(config_file)
        # --preset overrides the file's preset, which overrides the env id's
        file_values["preset"] = preset_name or file_values.get("preset") or preset_for(None, env_id or file_values.get("env_id"))
        cfg = preset(file_values["preset"])
    elif config_file.is_file():
        cfg = Config.load(config_file)
    else:
        raise ConfigError(f"--config {config_file}: no such file; pass a run.toml (see `fastdqn config`) or a run's config.json")
    changes: dict[str, Any] = dict(file_values)  # the options below override the file
    for name, value in values.items():
        if value is None:
            continue
        parsed = _option_values(name, value)
        if len(parsed) > 1:
            raise ConfigError(
                f"--{name.replace('_', '-')} {value} gives {len(parsed)} values; `fastdqn train` trains a grid of them, here give one"
            )
        changes[name] = parsed[0]
    return cfg.replace(**changes)


NOT_LISTS = {"out_dir", "run_name", "wandb_project", "wandb_entity", "log"}
"""Text options whose value may hold a comma: never split into a grid."""


def _option_values(name: str, value: Any) -> list[Any]:
    """An option's value(s) as the Config field's type; `1e-3,5e-3` gives two (a grid)."""
    hint = typing.get_type_hints(Config)[name]
    if hint == tuple[str, ...]:
        return [tuple(part.strip() for item in value for part in item.split(",") if part.strip())]
    if not isinstance(value, str):
        return [value]  # a library caller's typed value, or a flag
    parts = [value] if name in NOT_LISTS else [part.strip() for part in value.split(",")]
    parsed: list[Any] = []
    for part in parts:
        if hint == (float | None):
            parsed.append(_parse_optional_float(name, part))
        elif hint in (int, float):
            try:
                parsed.append(hint(part))
            except ValueError:
                kind = "an integer" if hint is int else "a number"
                raise ConfigError(f"--{name.replace('_', '-')} {part!r} is not {kind}") from None
        elif hint == (str | None) and part.lower() == "none":
            parsed.append(None)
        else:
            parsed.append(part)
    return parsed


def parse_seeds(text: str) -> list[int]:
    """`1-8`, `1,4,9` or `1-4,9` -> the seeds, in order, each once."""
    seeds: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            first, dash, last = part.partition("-")
            low, high = int(first), int(last) if dash else int(first)
            if high < low:
                raise ValueError
            seeds.extend(range(low, high + 1))
    except ValueError:
        raise ConfigError(f"--seeds {text!r} is not a seed list; write it as 1-8, 1,4,9 or 1-4,9") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must name each seed once; write it as 1-8, 1,4,9 or 1-4,9")
    return seeds


def build_configs(preset_name: str | None, config_file: Path | None, values: dict[str, Any], seeds: str | None) -> list[Config]:
    """The configs to train: one, or the grid of every option given several values, times `--seeds`
    (seeds vary fastest, so the members of one grid value sit together)."""
    grid = {name: _option_values(name, value) for name, value in values.items() if value is not None}
    listed = {name: options for name, options in grid.items() if len(options) > 1}
    if seeds is not None:
        if "seed" in grid:
            raise ConfigError("give --seed or --seeds, not both")
        listed["seed"] = list(parse_seeds(seeds))
    fixed = {name: options[0] for name, options in grid.items() if name not in listed}
    base = build_config(preset_name, config_file, fixed)
    # build_config reads None as "not given"; an explicit `none` (e.g. --stop-at-return none) is applied here
    base = base.replace(**{name: value for name, value in fixed.items() if value is None})
    if not listed:
        return [base]
    shaped = [name for name in listed if name in SHAPE_FIELDS]
    if shaped:
        raise ConfigError(
            f"{', '.join('--' + n.replace('_', '-') for n in shaped)} change tensor shapes and cannot take several values in one group; "
            "run one `fastdqn train` per value"
        )
    from fastdqn.resources import check_memory

    check_memory([base], members=math.prod(len(options) for options in listed.values()))  # before 100,000 configs are built
    names = list(listed)
    return [base.replace(**dict(zip(names, combo, strict=True))) for combo in itertools.product(*(listed[n] for n in names))]


def _train(
    preset_name: str | None, config_file: Path | None, quiet: bool, resume: Path | None, overwrite: bool, seeds: str | None, **values: Any
) -> None:
    try:
        cfgs = build_configs(preset_name, config_file, values, seeds) if resume is None else []
        if resume is not None and (resume / "group.json").is_file():  # a group folder: continue every member
            from fastdqn.group import read_group_configs

            given = sorted(name for name, value in values.items() if value is not None and name != "total_steps")
            if given or seeds is not None:
                raise ConfigError(
                    f"--resume continues a group with its saved configs; only --total-steps may change (got {', '.join(given) or '--seeds'})"
                )
            total = values.get("total_steps")
            cfgs = read_group_configs(resume, None if total is None else int(_option_values("total_steps", total)[0]))
        elif resume is not None and seeds is not None:
            raise ConfigError(f"--seeds starts a new group; --resume {resume} continues the run there with its own seed (drop --seeds)")
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
    if len(cfgs) > 1 or seeds is not None or (resume is not None and cfgs):
        _train_group(cfgs, quiet, overwrite, resume)
        return
    try:
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
        start = time.perf_counter() - age if age is not None else START
        run_training = train
        if cfg.actors > 0:  # Ape-X: Ray actors collect, this process learns (actor_source.py)
            from fastdqn.actor_source import train_distributed

            run_training = train_distributed
        result = run_training(cfg, progress=not quiet, start_time=start, resume=resume, overwrite=overwrite, plot=False)
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
    _report_run(cfg, result)
    if cfg.save_plot:  # after the report: the plot (matplotlib's import, a render) never delays the result
        from fastdqn.plot import plot_run

        plot_start = time.perf_counter()
        plot_run(result.run_dir)
        console.print(f"returns.png written in {time.perf_counter() - plot_start:.2f} s", highlight=False)


def _train_group(cfgs: list[Config], quiet: bool, overwrite: bool, resume: Path | None = None) -> None:
    """Many runs in one process (fastdqn/group.py): report each member and the group, then plot."""
    try:
        from fastdqn.group import plot_group, train_many
        from fastdqn.loggers import require_loggers
        from fastdqn.sysinfo import process_age_seconds

        require_loggers(cfgs[0].log)
        age = process_age_seconds()
        start = time.perf_counter() - age if age is not None else START
        results = train_many(cfgs, progress=not quiet, start_time=start, overwrite=overwrite, plot=False, resume=resume)
    except FastDQNError as error:
        raise fail(str(error), error.exit_code) from None
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


def _keyword(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _make_train_command() -> Callable[..., None]:
    def train_command(**kwargs: Any) -> None:
        with user_errors():
            _train(**kwargs)  # the fixed options below and the Config fields, by name

    fixed = [
        *_config_source_options(),
        _keyword("quiet", False, Annotated[bool, typer.Option("--quiet", help="No progress bar.")]),
        _keyword(
            "resume", None, Annotated[Path | None, typer.Option("--resume", help="Continue this run folder from its newest checkpoint.")]
        ),
        _keyword("overwrite", False, Annotated[bool, typer.Option("--overwrite", help="Replace an existing run folder of the same name.")]),
        _keyword(
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
    train_command.__dict__["__signature__"] = inspect.Signature(fixed + _train_options())  # typer reads the options from it
    train_command.__doc__ = (
        "Train a DQN agent; every option defaults to its preset's value: --preset, else the preset of --env "
        "(`fastdqn presets` lists them), else the general `default` preset. [cartpole preset: X] is CartPole-v1's."
    )
    return train_command


def _config_source_options() -> list[inspect.Parameter]:
    presets = ", ".join(config_module.preset_names())
    return [
        _keyword(
            "preset_name",
            None,
            Annotated[
                str | None,
                typer.Option(
                    "--preset",
                    help=f"Starting values: {presets} [default: the file's preset, else the one --env picks (`fastdqn presets`)].",
                ),
            ],
        ),
        _keyword(
            "config_file",
            None,
            Annotated[
                Path | None,
                typer.Option(
                    "--config", help="A TOML file (`fastdqn config`) over its preset, or a run's config.json; options override it."
                ),
            ],
        ),
    ]


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

    config_command.__dict__["__signature__"] = inspect.Signature(_config_source_options() + _train_options())
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
