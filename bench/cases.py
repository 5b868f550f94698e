"""The workloads `make bench` times, as plain functions: each builds its state and returns the timed callable.

The `bench_*.py` files wrap these in pytest-benchmark; `tests/test_bench.py` runs each of them on the
`tiny` profile. Every timed callable synchronises CUDA before it returns, so a figure is the time the
work takes, not the time to queue it.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import fastdqn
from bench.baselines.tutorial_buffer import ReplayBufferQue, sample_tensors
from bench.baselines.tutorial_loop import TutorialResult, TutorialSettings, run_tutorial
from fastdqn import Batch, Config, DQNAgent, ReplayBuffer
from fastdqn.envs import EnvSpaces, make_envs

CARTPOLE = EnvSpaces((4,), torch.float32, 2)
SOLVED_RETURN = 475.0
"""CartPole-v1 counts as solved once a greedy evaluation's mean return reaches this."""


@dataclass(frozen=True)
class Profile:
    """How much of each case to run: `full` for `make bench`, `quick` for a developer's loop, `tiny` for tests."""

    name: str
    rounds: int
    """Timed rounds per micro case (each round is `iterations` calls); warm-up rounds come on top."""
    warmup_rounds: int
    replay_rows: int
    """Rows held by the buffers that are sampled (the tutorial's capacity is 100k)."""
    act_sizes: tuple[int, ...]
    update_batches: tuple[int, ...]
    update_hidden: int
    compile_batches: tuple[int, ...]
    """Batch sizes that get compiled rows; compiling costs ~10-20 s a mode on a small CPU."""
    compile_modes: tuple[str, ...]
    num_envs: tuple[int, ...]
    collect_steps_per_env: int
    """Collection rounds run `num_envs * this` env steps (capped below)."""
    e2e_steps: int
    """Env steps per end-to-end round at the tutorial ratio; 4x that at the 1-per-16 ratio."""
    e2e_rounds: int
    learning_starts: int
    memory_rows: tuple[int, int]
    """Rows of the CartPole buffer and of the 84x84x4 uint8 buffer."""
    solve_seeds: tuple[int, ...]
    solve_args: tuple[str, ...] = ()
    """Extra `fastdqn train` options (the tiny profile shortens the run; real profiles add none)."""


PROFILES = {
    "full": Profile(
        name="full",
        rounds=200,
        warmup_rounds=10,
        replay_rows=100_000,
        act_sizes=(16, 256, 4096),
        update_batches=(256, 1024),
        update_hidden=256,
        compile_batches=(256, 1024),
        compile_modes=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        num_envs=(1, 16, 256),
        collect_steps_per_env=3_000,
        e2e_steps=2_500,
        e2e_rounds=2,
        learning_starts=1_000,
        memory_rows=(1_000_000, 100_000),
        solve_seeds=(1, 2, 3, 4, 5),
    ),
    "quick": Profile(
        name="quick",
        rounds=50,
        warmup_rounds=5,
        replay_rows=100_000,
        act_sizes=(16, 256, 4096),
        update_batches=(256, 1024),
        update_hidden=256,
        compile_batches=(256,),
        compile_modes=("default",),
        num_envs=(1, 16, 256),
        collect_steps_per_env=1_000,
        e2e_steps=1_000,
        e2e_rounds=1,
        learning_starts=300,
        memory_rows=(1_000_000, 100_000),
        solve_seeds=(1,),
    ),
    "tiny": Profile(
        name="tiny",
        rounds=2,
        warmup_rounds=1,
        replay_rows=2_000,
        act_sizes=(16,),
        update_batches=(32,),
        update_hidden=32,
        compile_batches=(32,),
        compile_modes=("default",),
        num_envs=(1, 16),
        collect_steps_per_env=20,
        e2e_steps=200,
        e2e_rounds=1,
        learning_starts=64,
        memory_rows=(1_000, 100),
        solve_seeds=(1,),
        solve_args=("--total-steps", "2000", "--eval-every-steps", "1000", "--eval-episodes", "2", "--learning-starts", "500"),
    ),
}


def profile_from_env() -> Profile:
    return PROFILES[os.environ.get("FASTDQN_BENCH_PROFILE", "full")]


def cuda_skip_reason() -> str | None:
    """Why cuda rows cannot run here, or None when they can."""
    if torch.cuda.is_available():
        return None
    build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}, no device visible"
    return f"CUDA not available (torch {torch.__version__}, {build})"


def synchronize(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ---- replay path -----------------------------------------------------------------------------------


def cartpole_step_rows(num_envs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One real CartPole-v1 vector step, as numpy arrays the env returned: obs (N, 4) f32, action (N,) i64, ..."""
    envs = make_envs("CartPole-v1", num_envs)
    obs, _ = envs.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, 2, num_envs)
    next_obs, rewards, terminated, truncated, _ = envs.step(actions)
    envs.close()
    return {
        "obs": obs,
        "action": actions,
        "reward": rewards,
        "next_obs": next_obs,
        "terminated": terminated,
        "done": terminated | truncated,
    }


def random_rows(n: int, device: torch.device | str, seed: int = 0) -> dict[str, torch.Tensor]:
    """n CartPole-shaped transitions on `device`, for filling a buffer before it is sampled."""
    g = torch.Generator().manual_seed(seed)
    rows = {
        "obs": torch.randn(n, 4, generator=g),
        "action": torch.randint(0, 2, (n,), generator=g),
        "reward": torch.ones(n),
        "next_obs": torch.randn(n, 4, generator=g),
        "terminated": torch.rand(n, generator=g) < 0.05,
    }
    return {k: v.to(device) for k, v in rows.items()}


def replay_extend(impl: str, num_envs: int, device: str, capacity: int) -> Callable[[], None]:
    """Append one vector step of `num_envs` rows: fastdqn's `extend`, or the tutorial's push per row."""
    step = cartpole_step_rows(num_envs)
    if impl == "baseline":
        memory = ReplayBufferQue(capacity)
        obs, actions, rewards, next_obs, dones = (step[k] for k in ("obs", "action", "reward", "next_obs", "done"))

        def push_rows() -> None:
            for i in range(num_envs):
                memory.push((obs[i], actions[i], rewards[i], next_obs[i], dones[i]))

        return push_rows
    buffer = ReplayBuffer.create(capacity, (4,), device=device)
    rows = {k: torch.from_numpy(step[k]).to(device) for k in ("obs", "action", "reward", "next_obs", "terminated")}

    def extend() -> None:
        buffer.extend(rows)
        synchronize(device)

    return extend


def replay_sample(impl: str, batch_size: int, device: str, rows: int) -> Callable[[], object]:
    """Draw `batch_size` rows as tensors ready for the update from a buffer holding `rows` rows.

    impl: `tensors` (`sample_tensors`, the training hot path), `tensordict` (`sample`, the public API)
    or `baseline` (`random.sample` on the deque, then `torch.tensor(np.array(...))`).
    """
    if impl == "baseline":
        memory = ReplayBufferQue(rows)
        rng = np.random.default_rng(0)
        obs = rng.standard_normal((rows, 4), dtype=np.float32)
        next_obs = rng.standard_normal((rows, 4), dtype=np.float32)
        for i in range(rows):
            memory.push((obs[i], i % 2, 1.0, next_obs[i], False))

        def sample_baseline() -> object:
            batch = sample_tensors(memory, batch_size, device)
            synchronize(device)
            return batch

        return sample_baseline
    buffer = ReplayBuffer.create(rows, (4,), device=device)
    buffer.extend(random_rows(rows, device))
    draw = buffer.sample_tensors if impl == "tensors" else buffer.sample

    def sample() -> object:
        batch = draw(batch_size)
        synchronize(device)
        return batch

    return sample


# ---- acting and the update ---------------------------------------------------------------------------


def act(num_obs: int, device: str) -> Callable[[], torch.Tensor]:
    """One batched epsilon-greedy `act` for `num_obs` observations, default network."""
    agent = DQNAgent(Config(device=device, compile="off"), CARTPOLE)
    obs = torch.randn(num_obs, 4, device=device)

    def act_once() -> torch.Tensor:
        actions = agent.act(obs, 0.05)
        synchronize(device)
        return actions

    return act_once


def update(impl: str, batch_size: int, hidden_dim: int, device: str) -> tuple[Callable[[], object], float]:
    """One gradient step on a fixed batch (no replay cost); returns the callable and its first-call seconds.

    impl: `eager`, or `compiled-<mode>` for `torch.compile(mode=<mode>)`. The first call compiles, so
    its time is the cold compile time; it is reported apart from the steady state.
    """
    compiled = impl.startswith("compiled-")
    if compiled:
        torch._dynamo.reset()  # each case compiles from cold: no graphs or guards left by the last one
    mode = impl.removeprefix("compiled-") if compiled else "default"
    cfg = Config(hidden_dim=hidden_dim, batch_size=batch_size, device=device, compile="on" if compiled else "off", compile_mode=mode)
    agent = DQNAgent(cfg, CARTPOLE)
    rows = random_rows(batch_size, device, seed=1)
    batch = Batch(rows["obs"], rows["action"], rows["reward"], rows["next_obs"], rows["terminated"])

    def update_once() -> object:
        stats = agent.update(batch)
        synchronize(device)
        return stats

    start = time.perf_counter()
    update_once()
    return update_once, time.perf_counter() - start


def compile_modes_for(device: str, modes: tuple[str, ...]) -> dict[str, str | None]:
    """mode -> None when it runs on `device`, else why it is skipped (CUDA graphs do nothing on CPU)."""
    if torch.device(device).type == "cuda":
        return dict.fromkeys(modes)
    same_on_cpu = {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}
    return {m: (f"on cpu the same as {same_on_cpu[m]} (the mode only adds CUDA graphs)" if m in same_on_cpu else None) for m in modes}


# ---- collection and end to end ------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """A replay ratio as the issue states it: one update of `batch_size` per `env_steps` env steps."""

    name: str
    batch_size: int
    env_steps: int

    def schedule(self, num_envs: int) -> tuple[int, int]:
        """(train_every, gradient_steps) that give this ratio with `num_envs` envs."""
        if num_envs >= self.env_steps:
            return 1, num_envs // self.env_steps
        return self.env_steps // num_envs, 1


RATIOS = {"tutorial": Ratio("tutorial", 64, 1), "1per16": Ratio("1per16", 128, 16)}
"""`tutorial`: one update of batch 64 per env step. `1per16`: one update of batch 128 per 16 env steps."""


def steady_sps(rows: list[dict[str, Any]]) -> float:
    """Median env steps/s over a run's metric rows, the first (set-up, learning starts, compile) left out."""
    values = [float(r["sps"]) for r in rows[1:] if r["sps"] != ""]
    if not values:
        values = [float(r["sps"]) for r in rows if r["sps"] != ""]
    return statistics.median(values)


@contextmanager
def timed_updates(device: str) -> Iterator[list[float]]:
    """Accumulate wall seconds spent inside `DQNAgent.update` while the block runs (one-element list)."""
    original = DQNAgent.update
    spent = [0.0]

    def update_timed(self: DQNAgent, batch: Any) -> Any:
        start = time.perf_counter()
        stats = original(self, batch)
        synchronize(device)  # on cuda this sync is the price of attributing time; on cpu a no-op
        spent[0] += time.perf_counter() - start
        return stats

    setattr(DQNAgent, "update", update_timed)  # noqa: B010 (a class attribute swapped for the block only)
    try:
        yield spent
    finally:
        setattr(DQNAgent, "update", original)  # noqa: B010


def base_config(
    num_envs: int, device: str, total_steps: int, out_dir: Path, learning_starts: int, preset: str | None = "tutorial"
) -> Config:
    """A preset's settings (the tutorial's; None: the defaults, `Config()`), eval and plots off, length in env steps.

    Periodic resumable checkpoints are turned off where the Config has them (one is still written at
    the end): a throughput figure should not depend on how often a run saves its buffer to disk.
    """
    start = fastdqn.preset(preset) if preset is not None else Config()
    if "checkpoint_every_steps" in {f.name for f in dataclasses.fields(Config)}:
        start = start.replace(checkpoint_every_steps=0)
    return start.replace(
        num_envs=num_envs,
        device=device,
        total_steps=total_steps,
        learning_starts=learning_starts,
        eval_every_steps=0,
        stop_at_return=None,
        save_plot=False,
        out_dir=str(out_dir),
        log_every_steps=max(total_steps // 8, num_envs),
    )


def collect(num_envs: int, device: str, profile: Profile, out_dir: Path) -> Callable[[], dict[str, float]]:
    """`fastdqn.train` of the default preset with updates turned off (act + env step + extend + bookkeeping)."""
    total = min(num_envs * profile.collect_steps_per_env, 2_000_000)
    total = max(total, 16 * num_envs)
    runs = iter(range(1_000_000))

    def run() -> dict[str, float]:
        cfg = base_config(num_envs, device, total, out_dir, learning_starts=0, preset=None)
        cfg = cfg.replace(train_every=10**9, run_name=f"collect-{num_envs}-{next(runs)}")  # no vector step is a multiple: no update
        cpu_start = time.process_time()
        result = fastdqn.train(cfg)
        cpu_s = time.process_time() - cpu_start
        return {"sps": steady_sps(result.metrics), "env_steps": result.env_steps, "wall_s": result.wall_seconds, "cpu_s": cpu_s}

    return run


def train_e2e(impl: str, ratio: str, num_envs: int, device: str, profile: Profile, out_dir: Path) -> Callable[[], dict[str, float]]:
    """A training run at a fixed replay ratio: `fastdqn.train` on the tutorial preset, or the tutorial loop."""
    r = RATIOS[ratio]
    total = profile.e2e_steps * (1 if ratio == "tutorial" else 4)
    total = max(total, profile.learning_starts + 8 * num_envs)
    train_every, gradient_steps = r.schedule(num_envs)
    runs = iter(range(1_000_000))
    if impl == "baseline":
        settings = TutorialSettings(
            total_steps=total,
            batch_size=r.batch_size,
            train_every=train_every,
            gradient_steps=gradient_steps,
            learning_starts=profile.learning_starts,
            device=device,
            log_every_steps=max(total // 8, 1),
        )

        def run_baseline() -> dict[str, float]:
            cpu_start = time.process_time()
            result: TutorialResult = run_tutorial(settings)
            cpu_s = time.process_time() - cpu_start
            sps = statistics.median(result.interval_sps[1:] or result.interval_sps)
            return {"sps": sps, "env_steps": result.env_steps, "updates": result.updates, "wall_s": result.wall_seconds, "cpu_s": cpu_s}

        return run_baseline

    def run_fastdqn() -> dict[str, float]:
        cfg = base_config(num_envs, device, total, out_dir, profile.learning_starts)
        cfg = cfg.replace(
            batch_size=r.batch_size, train_every=train_every, gradient_steps=gradient_steps, run_name=f"e2e-{ratio}-{num_envs}-{next(runs)}"
        )
        if device.startswith("cuda"):
            torch._dynamo.reset()  # a fresh agent per round compiles from cold; never hit the recompile limit
        cpu_start = time.process_time()
        with timed_updates(device) as spent:
            result = fastdqn.train(cfg)
        cpu_s = time.process_time() - cpu_start
        return {
            "cpu_s": cpu_s,
            "sps": steady_sps(result.metrics),
            "env_steps": result.env_steps,
            "updates": result.agent.updates,
            "wall_s": result.wall_seconds,
            "update_s": spent[0],
            "outside_update_fraction": 1.0 - spent[0] / result.wall_seconds,
            "compiled": float(result.agent.compiled),
        }

    return run_fastdqn
