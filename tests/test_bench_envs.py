"""The env-backend bench cases run on the tiny profile, and the report turns them into the issue's ratios."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ["FASTDQN_BENCH_PROFILE"] = "tiny"  # read when the bench modules are imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` is a top-level folder, not installed

from test_bench import OneCall  # the stand-in for pytest-benchmark's fixture

from bench import bench_envs, report


@pytest.mark.parametrize("backend", ["gymnasium", "torch"])
def test_bench_env_step_runs_tiny(backend: str) -> None:
    benchmark = OneCall()
    bench_envs.bench_env_step(benchmark, "cpu", backend, 16)
    assert benchmark.calls == 1 and benchmark.extra_info["num_envs"] == 16


@pytest.mark.parametrize("backend", ["gymnasium", "torch"])
@pytest.mark.parametrize("env_id", ["Acrobot-v1", "MountainCar-v0"])
def test_bench_env_step_crossover_runs_each_classic_env(env_id: str, backend: str) -> None:
    benchmark = OneCall()
    bench_envs.bench_env_step_crossover(benchmark, env_id, backend, 4)
    assert benchmark.calls == 1 and benchmark.extra_info["num_envs"] == 4


def test_auto_backend_switches_at_each_envs_crossover() -> None:
    """`--env-backend auto`: native from AUTO_TORCH_MIN_ENVS[env_id] envs up, Gymnasium below it and for every other id."""
    from fastdqn.envs import AUTO_TORCH_MIN_ENVS, NATIVE_ENVS, resolve_backend

    assert set(AUTO_TORCH_MIN_ENVS) == set(NATIVE_ENVS)
    assert [resolve_backend("Acrobot-v1", n, "auto") for n in (4, 15, 16)] == ["gymnasium", "gymnasium", "torch"]
    assert [resolve_backend("MountainCar-v0", n, "auto") for n in (1, 4)] == ["gymnasium", "torch"]
    assert [resolve_backend("CartPole-v1", n, "auto") for n in (16, 256)] == ["gymnasium", "torch"]
    assert resolve_backend("LunarLander-v3", 4096, "auto") == "gymnasium"


@pytest.mark.parametrize("backend", bench_envs.BACKENDS)
def test_bench_collect_backend_runs_tiny(backend: str, tmp_path: Path) -> None:
    benchmark = OneCall()
    bench_envs.bench_collect_backend(benchmark, "cpu", backend, 16, tmp_path)
    (figures,) = benchmark.extra_info["rounds"]
    assert figures["sps"] > 0 and figures["env_steps"] >= 16 * 16


def test_report_env_targets_are_ratios_of_rows_measured_together() -> None:
    def case(name: str, **params: Any) -> dict[str, Any]:
        return {"name": name, "params": {"device": "cpu", **params}, "outcome": "passed"}

    def sps(rate: float) -> dict[str, Any]:
        return {"unit": "sps", "rounds": [{"sps": rate}]}

    cases = {
        "c1": case("bench_collect_backend", backend="gymnasium", num_envs=256),
        "c2": case("bench_collect_backend", backend="torch", num_envs=256),
        "c3": case("bench_collect_backend", backend="torch-fused", num_envs=256),
        "e1": case("bench_env_step", backend="gymnasium", num_envs=256),
        "e2": case("bench_env_step", backend="torch", num_envs=256),
        "s1": case("bench_solve", seed=1, backend="gymnasium"),
        "s2": case("bench_solve", seed=1, backend="torch"),
    }
    infos = {"c1": sps(400_000), "c2": sps(500_000), "c3": sps(900_000), "e1": {"unit": "s"}, "e2": {"unit": "s"}}
    infos |= {"s1": {"unit": "s", "process_wall_s": 10.0}, "s2": {"unit": "s", "process_wall_s": 5.0}}
    medians = {"e1": 256 / 2_000_000, "e2": 256 / 1_000_000, "s1": 10.0, "s2": 5.0}
    timed = {
        "benchmarks": [
            {"fullname": f"b.py::{k}", "extra_info": infos.get(k, {}), "stats": {"median": medians.get(k, 1.0), "iqr": 0.0, "min": 1.0}}
            for k in cases
        ]
    }
    verdicts = {target: (measured, verdict) for target, measured, verdict in report.env_targets(report.build_rows(timed, cases))}
    assert verdicts["native collection >= 2x Gymnasium's at 256 envs"] == ("2.25x (native 900,000, gymnasium 400,000 steps/s)", "met")
    assert verdicts["gymnasium collection >= 80% of its env alone at 256 envs"][1] == "NOT met"  # 400k of 2M
    assert verdicts["torch collection >= 80% of its env alone at 256 envs"] == ("90% (900,000 of 1,000,000 steps/s)", "met")
    assert verdicts["native time to solve <= 0.6x Gymnasium's (median process wall)"] == ("0.50x (5.0 s vs 10.0 s)", "met")
