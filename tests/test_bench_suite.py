"""bench/sweep.py, bench/solve_sweep.py and bench/suite.py on a tiny budget: the tables and files they write hold what they say.

No timing is asserted here: the figures live in `make bench-suite`, never in the test suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` is a top-level folder, not installed

from bench import solve_sweep, stats, suite, sweep


def test_iqm_drops_a_quarter_at_each_end_and_the_interval_holds_it() -> None:
    values = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 1000.0]
    assert stats.iqm(values) == pytest.approx(4.5)  # 2 dropped at each end of 10: the mean of 2..7
    low, high = stats.bootstrap_ci(values)
    assert low <= stats.iqm(values) <= high
    assert stats.bootstrap_ci([3.0, 3.0, 3.0]) == (3.0, 3.0)


def test_sweep_reports_each_value_over_its_seeds(tmp_path: Path) -> None:
    argv = ["--preset", "cartpole-fast", "--seeds", "1-2", "--option", "learning_rate=1e-3,5e-3", "--out", str(tmp_path)]
    assert sweep.main([*argv, "--set", "total_steps=1200", "--set", "eval_every_steps=400", "--set", "eval_episodes=3"]) == 0
    (json_path,) = tmp_path.glob("sweep-*.json")
    payload = json.loads(json_path.read_text())
    assert [(e["value"], e["seeds"]) for e in payload["table"]] == [(1e-3, 2), (5e-3, 2)]
    assert sorted((r["value"], r["seed"]) for r in payload["runs"]) == [(1e-3, 1), (1e-3, 2), (5e-3, 1), (5e-3, 2)]
    for entry in payload["table"]:
        finals = [r["final_eval"] for r in payload["runs"] if r["value"] == entry["value"]]
        assert entry["final"]["iqm"] == pytest.approx(stats.iqm(finals))
        assert entry["final_solved"] == sum(f >= 475 for f in finals)
    assert payload["runs"][0]["group_size"] == 4  # the grid trains as one group
    md = json_path.with_suffix(".md").read_text()
    assert "| CartPole-v1 | cartpole-fast | learning_rate = 0.001 | 2 |" in md and "threads" in md


def test_sweep_variants_set_several_options_per_row(tmp_path: Path) -> None:
    argv = ["--preset", "cartpole-fast", "--seeds", "1-2", "--out", str(tmp_path), "--runs", str(tmp_path / "runs")]
    argv += ["--variant", "tau=0.01 target_update_every=1", "--variant", "learning_rate=1e-3"]
    assert sweep.main([*argv, "--set", "total_steps=1200", "--set", "eval_every_steps=400", "--set", "eval_episodes=3"]) == 0
    (json_path,) = tmp_path.glob("sweep-*.json")
    payload = json.loads(json_path.read_text())
    assert [(e["option"], e["value"], e["seeds"]) for e in payload["table"]] == [
        ("variant", "tau=0.01 target_update_every=1", 2),
        ("variant", "learning_rate=1e-3", 2),
    ]
    saved = {r["run_dir"]: (r["value"], r["group_size"]) for r in payload["runs"]}
    for run_dir, (value, group_size) in saved.items():
        cfg = json.loads((Path(run_dir) / "config.json").read_text())
        assert group_size == 4  # both variants and both seeds train as one group
        if value.startswith("tau"):
            assert (cfg["tau"], cfg["target_update_every"], cfg["learning_rate"]) == (0.01, 1, 5e-3)  # cartpole-fast's lr kept
        else:
            assert (cfg["tau"], cfg["learning_rate"]) == (1.0, 1e-3)


def test_solve_sweep_tabulates_each_variants_first_solve_over_its_seeds(tmp_path: Path) -> None:
    argv = [
        "--preset",
        "cartpole-fast",
        "--seeds",
        "1-3",
        "--out",
        str(tmp_path),
        "--variant",
        "num_envs=4",
        "--variant",
        "stop_at_return=1000",
    ]
    small = ["total_steps=1200", "eval_every_steps=400", "eval_episodes=3", "stop_at_return=20", "learning_starts=300"]
    assert solve_sweep.main([*argv, *(f"--set={item}" for item in small)]) == 0
    (json_path,) = tmp_path.glob("solve-sweep-*.json")
    payload = json.loads(json_path.read_text())
    easy, never = payload["table"]
    assert (easy["variant"], easy["seeds"]) == ("num_envs=4", 3)
    steps = [run["solved_env_steps"] for run in payload["runs"]["num_envs=4"]]
    assert easy["solved"] == sum(s is not None for s in steps) > 0
    assert all(s is None or s % 400 == 0 for s in steps)  # solves happen at evaluations (4 envs reach every 400th step)
    assert easy["per_seed"] == {str(seed): s for seed, s in zip([1, 2, 3], steps, strict=True)}
    assert (never["solved"], never["median_steps"], never["max_steps"]) == (
        0,
        float("inf"),
        float("inf"),
    )  # a return of 1000 is out of reach
    md = json_path.with_suffix(".md").read_text()
    assert "| num_envs=4 | " in md and "| stop_at_return=1000 | 0/3 | inf | inf |" in md


def test_suite_quick_writes_the_table_the_json_and_the_plot(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3", reason="the bench extra")
    pytest.importorskip("rl_zoo3", reason="`make bench-suite` installs rl_zoo3")
    assert suite.main(["--quick", "--out", str(tmp_path)]) == 0
    (json_path,) = tmp_path.glob("suite-quick-*.json")
    payload = json.loads(json_path.read_text())
    (entry,) = payload["table"]
    assert (entry["env_id"], entry["seeds"], entry["sb3_seeds"], entry["budget"]) == ("CartPole-v1", 2, 1, suite.QUICK_STEPS)
    assert entry["wall_ratio"] == pytest.approx(entry["wall_per_seed_s"] / entry["sb3_wall_median_s"])
    assert [r["total_steps"] for r in payload["sb3_runs"]] == [suite.QUICK_STEPS]
    assert payload["versions"]["rl_zoo3"] != "not installed" and payload["machine"]["cpu cores"]
    md = json_path.with_suffix(".md").read_text()
    assert md.startswith("| env (budget) | fastdqn final.pt IQM") and "| CartPole-v1 (2,000) |" in md
    assert json_path.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zoo_hyperparams_become_sb3_keywords() -> None:
    pytest.importorskip("rl_zoo3", reason="`make bench-suite` installs rl_zoo3")
    params = suite.zoo_hyperparams("CartPole-v1")
    assert params["policy_kwargs"] == {"net_arch": [256, 256]} and params["n_timesteps"] == 50_000
    assert (params["train_freq"], params["gradient_steps"], params["target_update_interval"]) == (256, 128, 10)
