"""The many-runs bench cases run on the tiny profile, and the report turns them into the issue's targets."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["FASTDQN_BENCH_PROFILE"] = "tiny"  # read when the bench modules are imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` is a top-level folder, not installed

from test_bench import OneCall  # the stand-in for pytest-benchmark's fixture

from bench import bench_members, report


@pytest.mark.parametrize("members", ["single", 8])
def test_bench_update_members_runs_one_update(members: str | int) -> None:
    benchmark = OneCall()
    bench_members.bench_update_members(benchmark, "cpu", members)
    assert benchmark.calls == 1 and "batch 64" in benchmark.extra_info["what"]


@pytest.mark.parametrize("members", ["single", 8])
def test_bench_per_step_members_runs_one_round(members: str | int) -> None:
    benchmark = OneCall()
    bench_members.bench_per_step_members(benchmark, "cpu", members)
    assert benchmark.calls == 1 and "PER round" in benchmark.extra_info["what"]


def test_report_states_the_member_targets_from_the_rows() -> None:
    def timed(members: str | int, seconds: float) -> report.Row:
        return report.Row("bench_update_members", {"device": "cpu", "members": members}, "ok", median=seconds)

    solve = report.Row("bench_group_solve", {"backend": "torch"}, "ok")
    solve.extra = {
        "group_wall_s": 20.0,
        "single_median_wall_s": 12.0,
        "single_walls_s": [12.0] * 8,
        "group_solved_steps": [20_000] * 7 + [None],
        "single_solved_steps": [16_000] * 8,
        "seeds": 8,
    }
    rows = [timed("single", 1e-3), *(timed(k, k * 3e-4) for k in (1, 4, 8, 32)), solve]
    found = {target: (measured, verdict) for target, measured, verdict in report.member_targets(rows)}
    assert found["K=8 stacked updates (MLP 2x64, batch 64) <= 2.5x one update"] == ("2.40x one update (2.4 ms)", "met")
    assert found["8 seeds as one group, torch envs: wall <= 2x the median single-seed wall"][1] == "met"
    assert found["group members solve (torch): >= 7 of 8"] == ("7 of 8", "met")
    assert found["group median env steps to solve within ±25% of the single runs' (torch)"][1] == "met"
    assert found["group of seeds, gymnasium envs: wall <= 2x the median single-seed wall"][1] == "not measured"


def test_report_holds_the_wide_group_against_four_single_walls() -> None:
    wide = report.Row("bench_group_solve_wide", {"backend": "torch"}, "ok")
    wide.extra = {"group_wall_s": 50.0, "single_median_wall_s": 10.0, "single_walls_s": [9.0, 10.0, 11.0], "group_solved": 31, "seeds": 32}
    found = {target: (measured, verdict) for target, measured, verdict in report.member_targets([wide])}
    assert found["32 seeds as one group, torch envs: wall <= 4x the median single-seed wall"] == (
        "5.00x (50.0 s vs 10.0 s; 31 of 32 solved)",
        "NOT met",
    )
    assert found["32 seeds as one group, gymnasium envs: wall <= 4x the median single-seed wall"][1] == "not measured"


def test_bench_group_solve_wide_times_the_group_and_its_singles(tmp_path: Path) -> None:
    benchmark = OneCall()
    bench_members.bench_group_solve_wide(benchmark, "torch", tmp_path)
    k, singles = bench_members.WIDE_GROUP["tiny"]
    extra = benchmark.extra_info
    assert extra["seeds"] == k and len(extra["single_walls_s"]) == singles
    assert extra["group_wall_s"] > 0 and 0 <= extra["group_solved"] <= k
    assert len([p for p in (tmp_path / "group" / "group").iterdir() if p.is_dir()]) == k


def test_bench_group_members_wall_times_one_member_and_the_group(tmp_path: Path) -> None:
    benchmark = OneCall()
    bench_members.bench_group_members_wall(benchmark, "cpu", tmp_path)
    extra = benchmark.extra_info
    assert extra["members"] == bench_members.DEVICE_GROUP["cpu"] and extra["one_wall_s"] > 0 and extra["group_wall_s"] > 0
    assert len([p for p in (tmp_path / str(extra["members"]) / "k8").iterdir() if p.is_dir()]) == extra["members"]
    row = report.Row("bench_group_members_wall", {"device": "cuda"}, "ok")
    row.extra = {"group_wall_s": 3.0, "one_wall_s": 2.0, "members": 256}
    found = {target: (measured, verdict) for target, measured, verdict in report.member_targets([row])}
    assert found["cuda: 256 members x 64 native envs <= 2x one member's wall"] == ("1.50x (3.0 s vs 2.0 s, 256 members)", "met")
