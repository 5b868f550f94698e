"""`train --actors N`: the Ape-X actor's rows, the learner's bookkeeping, faults, resume and errors.

The tests marked `ray` share one local Ray runtime (2 CPUs) started once for this module.
"""

from __future__ import annotations

import csv
import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from configs import quiet_config
from typer.testing import CliRunner

from fastdqn.actors import RolloutWorker, ape_x_epsilons
from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.checkpoint import latest_run_checkpoint, load_checkpoint
from fastdqn.cli import app
from fastdqn.config import Config, ConfigError, preset
from fastdqn.distributed import ActorPool, extend_with_priorities
from fastdqn.envs import make_envs
from fastdqn.nstep import NStepWriter
from fastdqn.per import PrioritizedSampler
from fastdqn.run_state import LoopState
from fastdqn.train import TrainingFailed, TrainingInterrupted

runner = CliRunner()
QUICK = ["--quiet", "--no-save-plot", "--device", "cpu", "--num-envs", "4", "--eval-every-steps", "0", "--stop-at-return", "none"]


def small(out: Path, **values: Any) -> Config:
    """2 actors of 4 CartPole envs, 128-step chunks, 16 updates of 32 per chunk after the first 256 steps."""
    settings: dict[str, Any] = {"actors": 2, "num_envs": 4, "chunk_steps": 128, "total_steps": 2_048, "learning_starts": 256}
    settings |= {"batch_size": 32, "gradient_steps": 1, "buffer_capacity": 4_096, "log_every_steps": 512, "run_name": "run"}
    return quiet_config(out, **{**settings, **values})


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def run_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


# The actor and the learner's parts, without Ray.


def test_ape_x_epsilons_follow_the_paper() -> None:
    assert ape_x_epsilons(2) == pytest.approx([0.4, 0.4**8])
    eight = ape_x_epsilons(8)
    assert eight[0] == pytest.approx(0.4) and eight[-1] == pytest.approx(0.4**8)
    assert eight[3] == pytest.approx(0.4 ** (1 + 7 * 3 / 7))
    assert all(a > b for a, b in itertools.pairwise(eight))
    with pytest.raises(ValueError, match="at least 2 actors"):
        ape_x_epsilons(1)


@pytest.mark.parametrize("n_step", [1, 3])
def test_rollout_worker_ships_the_rows_a_local_collector_would_store(tmp_path: Path, n_step: int) -> None:
    cfg = quiet_config(tmp_path, env_id="toyenv:Counter-v0", num_envs=3, n_step=n_step, chunk_steps=60, actors=2, seed=5)
    worker = RolloutWorker(cfg, index=1)
    learner = DQNAgent(cfg, worker.envs.spaces, "cpu")
    weights = (learner.online.data.numpy().copy(), learner.target.data.numpy().copy())
    chunk = worker.collect(weights, version=7, seed=123, epsilon=0.3)

    # the same steps taken here: an agent with the actor's seed, the same envs, transitions / n-step windows
    local = DQNAgent(cfg.replace(seed=cfg.seed + 2_000), worker.envs.spaces, "cpu")
    local.online.data.copy_(learner.online.data)
    envs = make_envs(cfg.env_id, 3, "gymnasium", "cpu")
    nstep = NStepWriter(n_step, cfg.gamma, 3, worker.envs.spaces.obs_shape, torch.float32, "cpu") if n_step > 1 else None
    obs, parts = envs.reset(seed=123), []
    for _ in range(20):
        actions = local.act(obs, 0.3)
        step = envs.step(actions)
        parts.append(step.transitions(obs, actions) if nstep is None else nstep.push_step(obs, actions, step))
        obs = step.next_obs
    expected = {name: torch.cat([p[name] for p in parts]).numpy() for name in parts[0]}
    assert (
        set(chunk["rows"])
        == set(expected)
        == ({"discount"} if n_step > 1 else set()) | {"obs", "action", "reward", "next_obs", "terminated"}
    )
    for name, value in expected.items():
        np.testing.assert_array_equal(chunk["rows"][name], value, err_msg=name)
    assert chunk["env_steps"] == 60 and chunk["weights_version"] == 7 and chunk["priorities"] is None
    # Counter-v0 obs is [episode, t, offset]: no stored row starts at a NEXT_STEP reset step's obs of the episode before
    rows = chunk["rows"]
    assert (rows["next_obs"][:, 0] == rows["obs"][:, 0]).all(), "a row spans two episodes"
    assert len(chunk["episode_returns"]) == len(chunk["episode_lengths"]) > 0


def test_rollout_worker_acts_greedily_with_the_learners_weights_and_sends_td_priorities(tmp_path: Path) -> None:
    cfg = quiet_config(tmp_path, num_envs=2, chunk_steps=32, actors=2, per=True)
    worker = RolloutWorker(cfg, index=0)
    learner = DQNAgent(cfg.replace(seed=99), worker.envs.spaces, "cpu")
    learner.target.data.mul_(0.5)  # a target unlike the online net, so priorities need both
    chunk = worker.collect((learner.online.data.numpy(), learner.target.data.numpy()), version=0, seed=1, epsilon=0.0)
    rows = {name: torch.from_numpy(value) for name, value in chunk["rows"].items()}
    np.testing.assert_array_equal(chunk["rows"]["action"], learner.q_values(rows["obs"]).argmax(1).numpy())
    td = learner.td_target(rows["reward"], rows["next_obs"], rows["terminated"]) - learner.q_values(rows["obs"]).gather(
        1, rows["action"].unsqueeze(1)
    ).squeeze(1)
    np.testing.assert_allclose(chunk["priorities"], td.abs().numpy(), rtol=1e-5, atol=1e-6)
    again = worker.collect(None, version=1, seed=None, epsilon=0.0)  # no new weights: keeps the last ones
    assert again["weights_version"] == 0


def test_rollout_worker_whose_env_raised_waits_for_a_reset_then_rebuilds_its_envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = RolloutWorker(quiet_config(tmp_path, num_envs=2, chunk_steps=8, actors=2), index=0)
    broken = worker.envs

    def explode(actions: torch.Tensor) -> Any:
        raise RuntimeError("simulator diverged")

    monkeypatch.setattr(broken, "step", explode)
    with pytest.raises(RuntimeError, match="simulator diverged"):
        worker.collect(None, version=0, seed=1, epsilon=1.0)
    with pytest.raises(RuntimeError, match="waits for the learner's reset"):
        worker.collect(None, version=0, seed=None, epsilon=1.0)
    chunk = worker.collect(None, version=0, seed=2, epsilon=1.0)
    assert worker.envs is not broken and chunk["env_steps"] == 8 and len(chunk["rows"]["action"]) == 8


def test_extend_with_priorities_sets_the_written_rows_leaves_even_across_the_wrap() -> None:
    sampler = PrioritizedSampler(8, "cpu", alpha=0.5, eps=0.01)
    buffer = ReplayBuffer.create(8, (2,), device="cpu", sampler=sampler)

    def rows(n: int, start: float) -> dict[str, torch.Tensor]:
        obs = torch.arange(start, start + n).unsqueeze(1).repeat(1, 2)
        return {
            "obs": obs,
            "action": torch.zeros(n, dtype=torch.int64),
            "reward": torch.zeros(n),
            "next_obs": obs,
            "terminated": torch.zeros(n, dtype=torch.bool),
        }

    extend_with_priorities(buffer, rows(5, 0), torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    expected = torch.zeros(8, dtype=torch.float64)
    expected[:5] = (torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64) + 0.01) ** 0.5
    torch.testing.assert_close(sampler.leaves, expected)
    extend_with_priorities(buffer, rows(5, 5), torch.tensor([0.0, 0.5, 0.25, 9.0, 0.125]))  # rows 5, 6, 7, 0, 1
    for where, p in zip([5, 6, 7, 0, 1], [0.0, 0.5, 0.25, 9.0, 0.125], strict=True):
        assert sampler.leaves[where].item() == pytest.approx((p + 0.01) ** 0.5), where
    extend_with_priorities(buffer, rows(11, 20), torch.arange(11.0))  # longer than the ring: the newest 8 stay
    stored = buffer.storage.fields["obs"][:, 0]
    for where in range(8):
        assert sampler.leaves[where].item() == pytest.approx((stored[where].item() - 20 + 0.01) ** 0.5), where


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"actors": -1}, "actors=-1 must be an integer >= 0"),
        ({"ray_address": "auto"}, "needs actors"),
        ({"actors": 2, "env_backend": "torch"}, "drop --env-backend torch"),
        ({"actors": 2, "weights_every": 0}, "weights_every=0 must be a positive integer"),
        ({"actors": 2, "actor_epsilon": 1.5}, "actor_epsilon=1.5"),
    ],
)
def test_config_refuses_bad_actor_settings(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**values)


def test_train_refuses_negative_actors_in_one_line(tmp_path: Path) -> None:
    code, output = run_cli("train", "--out", str(tmp_path), "--quiet", "--actors", "-2")
    assert code == 2 and "actors=-2 must be an integer >= 0" in output
    assert not any(tmp_path.iterdir())


def test_train_without_ray_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as it does where the extra is missing
    code, output = run_cli("train", "--out", str(tmp_path), *QUICK, "--actors", "2", "--total-steps", "2000")
    assert code == 2 and 'pip install -e ".[ray]"' in output
    assert not any(tmp_path.iterdir())


def test_train_with_an_unreachable_ray_address_fails_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    code, output = run_cli(
        "train", "--out", str(tmp_path), *QUICK, "--actors", "2", "--total-steps", "2000", "--ray-address", "127.0.0.1:1"
    )
    assert code == 2 and "cannot reach a Ray cluster at 127.0.0.1:1" in output and "ray start --head" in output
    assert not any(tmp_path.iterdir())


# On a local Ray runtime.


@pytest.fixture(scope="module")
def ray_runtime() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, log_to_driver=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_learner_stores_every_chunk_and_keeps_the_single_process_replay_ratio(tmp_path: Path, ray_runtime: Any) -> None:
    from fastdqn.actor_source import train_distributed

    chunks: list[int] = []
    result = train_distributed(small(tmp_path), after_chunk=lambda pool, state: chunks.append(state.env_steps))
    assert result.env_steps == 2_048 == sum(result.actor_env_steps)
    assert len(result.actor_env_steps) == 2  # how the steps split depends on which actor started first
    # 128 env steps of 4 envs per chunk = 32 rounds of gradient_steps=1 once 256 steps are in: (16 - 1) chunks
    assert result.agent.updates == 15 * 32
    assert chunks == list(range(128, 2_049, 128))
    assert len(result.buffer) < 2_048 and len(result.buffer) > 2_048 - 2 * 4 * 64  # reset steps are not rows
    rows = read_csv(tmp_path / "run" / "actors.csv")
    assert [int(r["env_steps"]) for r in rows] == [512, 1_024, 1_536, 2_048]
    last = rows[-1]
    assert float(last["actor0_sps"]) + float(last["actor1_sps"]) > 0 and float(last["updates_per_s"]) > 0  # one may still be starting
    assert int(last["lost_chunks"]) == 0 and int(last["actor_restarts"]) == 0 and 0 <= int(last["queue_depth"]) <= 4
    metrics = read_csv(tmp_path / "run" / "metrics.csv")
    assert int(metrics[-1]["env_steps"]) == 2_048 and int(metrics[-1]["updates"]) == 15 * 32 and float(metrics[-1]["return_mean"]) > 0


@pytest.mark.ray
def test_killed_actor_is_restarted_and_the_run_finishes_with_nothing_lost(tmp_path: Path, ray_runtime: Any) -> None:
    from fastdqn.actor_source import train_distributed

    killed: list[tuple[int, int]] = []  # (actor, its env steps when killed)
    deadline = [0.0]  # until when the learner waits for the restarted actor's first chunk

    def kill_once(pool: ActorPool, state: LoopState) -> None:
        if killed:
            victim, steps_when_killed = killed[0]
            left = deadline[0] - time.monotonic()
            if pool.env_steps[victim] == steps_when_killed and left > 0:
                # The other actor is warm and could collect the rest of the run before the new process sends its
                # first chunk on a loaded machine: the learner waits for the victim's request before it takes more.
                requests = [ref for ref, (actor, _, kind) in pool.in_flight.items() if actor == victim and kind == "collect"]
                if requests:
                    ray_runtime.wait(requests, num_returns=1, timeout=left)
                else:  # still being pinged back to work
                    time.sleep(0.2)
            return
        if state.env_steps < 768:
            return
        victim = int(np.argmax(pool.env_steps))  # one that is up and has delivered
        killed.append((victim, pool.env_steps[victim]))
        before = ray_runtime.get(pool.handles[victim].ping.remote())
        ray_runtime.kill(pool.handles[victim], no_restart=False)
        deadline[0] = time.monotonic() + 120.0
        for _ in range(300):  # hold the learner until the new process answers, so it has steps left to collect
            try:
                if ray_runtime.get(pool.handles[victim].ping.remote()) != before:
                    return
            except ray_runtime.exceptions.RayActorError:
                pass
            time.sleep(0.2)

    cfg = small(tmp_path, total_steps=3_072, checkpoint_every_steps=1_024)
    result = train_distributed(cfg, after_chunk=kill_once)
    victim, steps_when_killed = killed[0]
    assert result.actor_restarts[victim] == 1 and sum(result.actor_restarts) == 1
    assert result.lost_chunks <= 2  # the requests it had running, if any: one it had finished is still taken
    assert result.actor_env_steps[victim] > steps_when_killed, "the restarted actor collected again"
    assert result.env_steps == 3_072 == sum(result.actor_env_steps)  # lost chunks are never counted as stored
    rows = read_csv(tmp_path / "run" / "actors.csv")
    assert int(rows[-1]["actor_restarts"]) == 1 and int(rows[-1]["lost_chunks"]) == result.lost_chunks
    steps = [int(r["env_steps"]) for r in read_csv(tmp_path / "run" / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 3_072
    assert latest_run_checkpoint(tmp_path / "run").name == "step-000000003072.pt"


@pytest.mark.ray
def test_env_that_always_raises_stops_the_run_with_one_line_and_keeps_what_was_written(tmp_path: Path, ray_runtime: Any) -> None:
    from fastdqn.actor_source import train_distributed

    cfg = small(tmp_path, env_id="toyenv:ExplodingCounter-v0", actors=1)
    with pytest.raises(TrainingFailed, match=r"actor 0 failed 3 times in a row .*simulator diverged"):
        train_distributed(cfg)
    assert (tmp_path / "run" / "metrics.csv").exists() and (tmp_path / "run" / "actors.csv").exists()


@pytest.mark.ray
def test_env_producing_nan_in_an_actor_stops_the_run_at_once_naming_the_env(tmp_path: Path, ray_runtime: Any) -> None:
    from fastdqn.actor_source import train_distributed

    cfg = small(tmp_path, env_id="nonfinite_envs:NaNReward-v0", actors=1, chunk_steps=24, learning_starts=48, checkpoint_every_steps=48)
    with pytest.raises(TrainingFailed, match=r"actor 0: the env produced NaN/inf rewards at env step [\d,]+ \(env \d") as failed:
        train_distributed(cfg)
    assert "learning-rate" not in str(failed.value) and "failed 3 times" not in str(failed.value)  # no restarts: the env is at fault
    for path in (tmp_path / "run").rglob("*.pt"):
        assert all(torch.isfinite(t).all() for t in load_checkpoint(path)["agent"]["q_network"].values())


@pytest.mark.ray
def test_interrupted_distributed_run_resumes_from_its_checkpoint_with_fresh_actors(tmp_path: Path, ray_runtime: Any) -> None:
    from fastdqn.actor_source import train_distributed

    cfg = small(tmp_path, total_steps=2_560, per=True, n_step=3)
    with pytest.raises(TrainingInterrupted) as stopped:
        train_distributed(cfg, interrupt_at_step=1_024)
    saved = load_checkpoint(stopped.value.checkpoint)
    assert saved["loop"]["counters"][0] == 1_024 and saved["agent"]["updates"] == 7 * 32
    result = train_distributed(cfg, resume=tmp_path / "run")
    assert result.env_steps == 2_560 and result.agent.updates == 19 * 32
    assert sum(result.actor_env_steps) == 2_560
    for name in ("metrics.csv", "actors.csv"):
        steps = [int(r["env_steps"]) for r in read_csv(tmp_path / "run" / name)]
        assert steps == sorted(set(steps)) and steps[-1] == 2_560, name
    episodes = [int(r["env_steps"]) for r in read_csv(tmp_path / "run" / "episodes.csv")]
    assert episodes == sorted(episodes)


@pytest.mark.ray
def test_train_cli_with_actors_reports_the_run(tmp_path: Path, ray_runtime: Any) -> None:
    args = ["--actors", "2", "--total-steps", "1024", "--learning-starts", "256", "--chunk-steps", "128", "--run-name", "r"]
    code, output = run_cli("train", "--out", str(tmp_path), *QUICK, *args)
    assert code == 0, output
    assert "1,024" in output and (tmp_path / "r" / "final.pt").exists() and (tmp_path / "r" / "actors.csv").exists()


@pytest.mark.ray
@pytest.mark.slow
def test_two_actors_solve_cartpole_within_one_and_a_half_single_process_budgets(tmp_path: Path, ray_runtime: Any) -> None:
    """In one process cartpole-fast solves seeds 1-3 at 4k, 3k and 2k env steps (17k, 25k and 21k before its retune to 4 envs
    and 16 updates a vector step; test_train gives it 60k); 2 actors get 1.5x 30k. Measured with the earlier values: 19.2k,
    20.2k and 25.1k (Ray's timing makes them vary a little)."""
    from fastdqn.actor_source import train_distributed

    solved = []
    for seed in (1, 2, 3):
        cfg = preset("cartpole-fast").replace(
            actors=2, seed=seed, total_steps=45_000, device="cpu", save_plot=False, out_dir=str(tmp_path), run_name=f"s{seed}"
        )
        result = train_distributed(cfg)
        solved.append(result.solved_at_step is not None and result.best_eval_return is not None and result.best_eval_return >= 475)
        if sum(solved) >= 2:
            break
    assert sum(solved) >= 2, solved


@pytest.mark.ray
def test_sigterm_to_a_distributed_run_writes_a_checkpoint_and_resume_continues_it(tmp_path: Path) -> None:
    """The learner handles SIGTERM as the single-process loop does: a checkpoint at the current step, exit 143."""
    import signal

    from test_resume import start_training, wait_for_checkpoints

    from fastdqn.checkpoint import load_checkpoint

    args = ("--actors", "1", "--ray-cpus", "2", "--total-steps", "10000000", "--checkpoint-every-steps", "1000")
    process = start_training(tmp_path, *args, "--eval-every-steps", "0", "--stop-at-return", "none", "--learning-starts", "500")
    wait_for_checkpoints(tmp_path / "run", 1, process, timeout=240.0)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "SIGTERM at env step" in stderr and "Traceback" not in stderr
    newest = sorted((tmp_path / "run" / "checkpoints").glob("step-*.pt"))[-1]
    assert load_checkpoint(newest)["loop"]["counters"][0] >= 1000
