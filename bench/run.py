"""`make bench` / `make bench-quick`: run the pytest-benchmark cases, print one table, write the results.

    python bench/run.py [--quick] [--threads N] [-k EXPR] [--out DIR]

Writes `bench/results/<host>-<date>.json` (pytest-benchmark's JSON plus a `fastdqn` section: the
machine, the threads, the load average, each case's outcome), a markdown copy of the tables next to it
and the plot of env steps/s against num_envs.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable as a package

# A fresh inductor cache per run, set before torch is imported: "cold compile" then means cold, not
# a hit on the kernels an earlier run left in /tmp.
if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="fastdqn-bench-inductor-")
    atexit.register(shutil.rmtree, os.environ["TORCHINDUCTOR_CACHE_DIR"], True)

import pytest  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from bench import report  # noqa: E402
from fastdqn.sysinfo import system_info  # noqa: E402


class Outcomes:
    """A pytest plugin that keeps each case's params and outcome; skipped and failed cases keep their reason."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        rep = outcome.get_result()
        if rep.when != "call" and rep.outcome == "passed":
            return
        if rep.when == "teardown" and item.name in self.cases and self.cases[item.name]["outcome"] != "passed":
            return
        params = dict(item.callspec.params) if hasattr(item, "callspec") else {}
        reason = ""
        if rep.skipped and isinstance(rep.longrepr, tuple):
            reason = str(rep.longrepr[2]).removeprefix("Skipped: ")
        elif rep.failed:
            lines = [line for line in rep.longreprtext.splitlines() if line.startswith("E ")]
            reason = (lines[-1] if lines else rep.longreprtext.splitlines()[-1]).removeprefix("E ").strip()[:300]
        name = getattr(item, "originalname", item.name)
        self.cases[item.name] = {"name": name, "params": params, "outcome": rep.outcome, "reason": reason}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_const", const="quick", dest="profile", default="full", help="fewer rounds, one compile mode"
    )
    parser.add_argument("--tiny", action="store_const", const="tiny", dest="profile", help="smoke sizes (what the tests run)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for every case (default 1, fastdqn's default)")
    parser.add_argument("-k", dest="select", default="", help="pytest -k expression to run a subset")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="where results go")
    args = parser.parse_args(argv)

    os.environ["FASTDQN_BENCH_PROFILE"] = args.profile
    os.environ["FASTDQN_BENCH_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 160))  # a piped run would wrap the table at 80 columns
    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    outcomes = Outcomes()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "benchmark.json"
        pytest_args = [str(ROOT / "bench"), "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "testpaths=bench"]
        pytest_args += ["-o", "python_files=bench_*.py", "-o", "python_functions=bench_*", "-W", "ignore::DeprecationWarning"]
        pytest_args += [f"--benchmark-json={raw}", "--benchmark-quiet", "--rootdir", str(ROOT)]
        if args.select:
            pytest_args += ["-k", args.select]
        clock = time.perf_counter()
        code = pytest.main(pytest_args, plugins=[outcomes])
        elapsed = time.perf_counter() - clock
        bench_json: dict[str, Any] = json.loads(raw.read_text()) if raw.exists() else {"benchmarks": []}

    rows = report.ordered(report.build_rows(bench_json, outcomes.cases))
    bench_json["fastdqn"] = {
        "profile": args.profile,
        "torch_threads": args.threads,
        "system": system_info(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "bench_wall_s": elapsed,
        "started_utc": started.isoformat(timespec="seconds"),
        "cases": outcomes.cases,
        "targets": report.targets(rows),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.profile == "full" else f"-{args.profile}"
    stem = f"{platform.node() or 'host'}-{started:%Y%m%d-%H%M%S}{suffix}"
    results = args.out / f"{stem}.json"
    results.write_text(json.dumps(bench_json, indent=1, default=str))

    info = system_info()
    machine = f"{info['cpu']}, {info['cpu cores']} cores, torch {info['torch']} ({args.threads} thread), {info['platform']}"
    load = f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    console.print(f"\n[bold]fastdqn bench[/] ({args.profile}) on {machine}; {load}; {elapsed:.0f} s")
    main_cells, memory_cells, solve_cells = report.main_cells(rows), report.memory_cells(rows), report.solve_cells(rows)
    target_cells = [list(t) for t in report.targets(rows)]
    console.print(report.rich_table("speed (ratios are speed-ups: >1 is faster)", report.COLUMNS, main_cells))
    console.print(report.rich_table("memory", report.MEMORY_COLUMNS, memory_cells))
    console.print(
        report.rich_table(
            "time to solve CartPole-v1: fastdqn (cartpole preset, each env backend), SB3 (rl-zoo hyperparameters)",
            report.SOLVE_COLUMNS,
            solve_cells,
        )
    )
    profile_cells = report.profile_cells(rows)
    console.print(report.rich_table("where one `fastdqn train` process spends its wall time", report.PROFILE_COLUMNS, profile_cells))
    console.print(report.rich_table("the issue's targets", report.TARGET_COLUMNS, target_cells))

    markdown = [
        f"Measured {started:%Y-%m-%d} on {machine}; {load}; `make bench{'' if args.profile == 'full' else '-' + args.profile}` took {elapsed:.0f} s.",
        "",
    ]
    tables = [(report.COLUMNS, main_cells), (report.MEMORY_COLUMNS, memory_cells), (report.SOLVE_COLUMNS, solve_cells)]
    for headers, cells in [*tables, (report.PROFILE_COLUMNS, profile_cells)]:
        markdown += [report.markdown_table(headers, cells), ""]
    markdown += [report.markdown_table(report.TARGET_COLUMNS, target_cells), ""]
    (args.out / f"{stem}.md").write_text("\n".join(markdown))
    written = [results, args.out / f"{stem}.md"]
    try:
        from bench.plot import plot_sps

        written.append(plot_sps(results, args.out / f"{stem}.png"))
    except Exception as error:  # the numbers are already written; a plot failure must not lose them
        console.print(f"[yellow]plot skipped:[/] {error}")
    console.print("wrote " + ", ".join(str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in written))
    return 0 if code in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) else int(code)


if __name__ == "__main__":
    sys.exit(main())
