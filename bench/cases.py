"""The workloads `make bench` times, as plain functions: each builds its state and returns the timed callable.

Whole training runs (collection, end to end) live in `runs.py`. The `bench_*.py` files wrap both in
pytest-benchmark; `tests/test_bench.py` runs each of them on the `tiny` profile. Every timed callable synchronises CUDA before it returns, so a figure is the time the
work takes, not the time to queue it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench.baselines.bare_ring import BareRing
from bench.baselines.sb3_buffer import sb3_buffer
from bench.baselines.tutorial_buffer import ReplayBufferQue, sample_tensors
from fastdqn import Batch, Config, DQNAgent, ReplayBuffer
from fastdqn.envs import EnvSpaces, gymnasium_vector_env

CARTPOLE = EnvSpaces((4,), torch.float32, 2)


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
    native_envs: tuple[int, ...] = (16, 256, 4096)
    """num_envs of the env-backend cases (bench_envs.py); cuda rows add `cuda_native_envs`."""
    cuda_native_envs: tuple[int, ...] = (65_536,)
    sb3_solve_seeds: tuple[int, ...] = ()
    """Seeds of Stable-Baselines3's time to solve (about 100 s each on 2 CPU cores); none: the case is skipped."""
    sb3_solve_max_steps: int = 50_000
    """Env steps after which an SB3 seed that has not solved stops (the zoo's budget; tiny: a smoke run)."""
    sb3_eval_every_steps: int | None = None
    """Evaluation interval of the SB3 runs; None: the cartpole preset's `eval_every_steps`, as fastdqn's."""
    startup_rounds: int = 5
    """Processes timed per start-up case (`fastdqn --help`, `fastdqn info`)."""


PROFILES = {
    "full": Profile(
        name="full",
        rounds=200,
        warmup_rounds=10,
        replay_rows=100_000,
        act_sizes=(16, 256, 4096),
        update_batches=(64, 256, 1024),
        update_hidden=256,
        compile_batches=(256, 1024),
        compile_modes=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        num_envs=(1, 16, 256),
        collect_steps_per_env=3_000,
        e2e_steps=2_500,
        e2e_rounds=2,
        learning_starts=1_000,
        memory_rows=(1_000_000, 100_000),
        solve_seeds=tuple(range(1, 11)),
        sb3_solve_seeds=(1, 2, 3),
    ),
    "quick": Profile(
        name="quick",
        rounds=50,
        warmup_rounds=5,
        replay_rows=100_000,
        act_sizes=(16, 256, 4096),
        update_batches=(64, 256),
        update_hidden=256,
        compile_batches=(256,),
        compile_modes=("default",),
        num_envs=(1, 16, 256),
        collect_steps_per_env=1_000,
        e2e_steps=1_000,
        e2e_rounds=1,
        learning_starts=300,
        memory_rows=(200_000, 20_000),  # the same bytes per transition as `full`, a fifth of the allocation
        solve_seeds=(1,),
        startup_rounds=3,
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
        native_envs=(16,),
        cuda_native_envs=(1_024,),
        sb3_solve_seeds=(1,),
        sb3_solve_max_steps=1_300,  # one round of SB3's 128 updates (at 1,024 steps), evaluations at 500 and 1,000
        sb3_eval_every_steps=500,
        startup_rounds=1,
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


def cartpole_step_rows(num_envs: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One real CartPole-v1 vector step, as numpy arrays the env returned: obs (N, 4) f32, action (N,) i64, ..."""
    envs = gymnasium_vector_env("CartPole-v1", num_envs)
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
    """Append one vector step of `num_envs` rows: fastdqn's `extend`, the tutorial's push per row, the bare ring's or SB3's `add`."""
    step = cartpole_step_rows(num_envs)
    if impl == "baseline":
        memory = ReplayBufferQue(capacity)
        obs, actions, rewards, next_obs, dones = (step[k] for k in ("obs", "action", "reward", "next_obs", "done"))

        def push_rows() -> None:
            for i in range(num_envs):
                memory.push((obs[i], actions[i], rewards[i], next_obs[i], dones[i]))

        return push_rows
    if impl == "sb3":
        sb3 = sb3_buffer(capacity, num_envs, device)
        infos: list[dict[str, object]] = [{} for _ in range(num_envs)]

        def add_sb3() -> None:
            sb3.add(step["obs"], step["next_obs"], step["action"], step["reward"], step["done"], infos)

        return add_sb3
    rows = {k: torch.from_numpy(step[k]).to(device) for k in ("obs", "action", "reward", "next_obs", "terminated")}
    if impl == "bare":
        ring = BareRing(capacity, 4, device)
        done = rows["terminated"].float()

        def add() -> None:
            ring.add(rows["obs"], rows["action"], rows["reward"], rows["next_obs"], done)
            synchronize(device)

        return add
    buffer = ReplayBuffer.create(capacity, (4,), device=device)

    def extend() -> None:
        buffer.extend(rows)
        synchronize(device)

    return extend


def replay_path(impl: str, device: str, capacity: int) -> Callable[[], object]:
    """One replay step of a training loop: extend one 16-env vector step, then sample 256 rows as tensors.

    impl: `fastdqn` (the public `ReplayBuffer.extend` + `sample_tensors`, K = 1), `bare` (five
    tensors, `arange % capacity` writes and one `torch.randint`, the floor a hand-written ring sets)
    or `torchrl` (TorchRL's `ReplayBuffer(LazyTensorStorage)`: `extend` a TensorDict, `sample`).
    The buffer starts full, so every step pays the wrap-around a long run pays.
    """
    step = {k: torch.from_numpy(v).to(device) for k, v in cartpole_step_rows(16).items() if k != "done"}
    filled = random_rows(capacity, device)
    if impl == "bare":
        ring = BareRing(capacity, 4, device)
        ring.add(filled["obs"], filled["action"], filled["reward"], filled["next_obs"], filled["terminated"].float())
        done = step["terminated"].float()

        def bare_step() -> object:
            ring.add(step["obs"], step["action"], step["reward"], step["next_obs"], done)
            batch = ring.sample(256)
            synchronize(device)
            return batch

        return bare_step
    if impl == "torchrl":
        from bench.baselines.torchrl_buffer import as_tensordict, torchrl_buffer

        peer = torchrl_buffer(capacity, 256, device)
        peer.extend(as_tensordict(filled))
        rows = as_tensordict(step)

        def torchrl_step() -> object:
            peer.extend(rows)
            batch = peer.sample()
            fields = tuple(batch[name] for name in ("obs", "action", "reward", "next_obs", "terminated"))  # tensors for the update
            synchronize(device)
            return fields

        return torchrl_step
    buffer = ReplayBuffer.create(capacity, (4,), device=device)
    buffer.extend(filled)

    def fastdqn_step() -> object:
        buffer.extend(step)
        batch = buffer.sample_tensors(256)
        synchronize(device)
        return batch

    return fastdqn_step


def replay_sample(impl: str, batch_size: int, device: str, rows: int) -> Callable[[], object]:
    """Draw `batch_size` rows as tensors ready for the update from a buffer holding `rows` rows.

    impl: `tensors` (`sample_tensors`, the training hot path), `tensordict` (`sample`, the public API),
    `baseline` (`random.sample` on the deque, then `torch.tensor(np.array(...))`), `bare` (five
    tensors indexed by one `torch.randint`, the floor a hand-written ring sets) or `sb3`
    (Stable-Baselines3's ReplayBuffer, filled from 16 envs).
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
    filled = random_rows(rows, device)
    if impl == "sb3":
        num_envs = 16
        sb3 = sb3_buffer(rows, num_envs, device)
        host = {k: v.cpu().numpy().reshape(rows // num_envs, num_envs, *v.shape[1:]) for k, v in filled.items()}
        infos: list[dict[str, object]] = [{} for _ in range(num_envs)]
        for i in range(rows // num_envs):
            sb3.add(host["obs"][i], host["next_obs"][i], host["action"][i], host["reward"][i], host["terminated"][i], infos)
        draw: Callable[[int], object] = sb3.sample
    elif impl == "bare":
        ring = BareRing(rows, 4, device)
        ring.add(filled["obs"], filled["action"], filled["reward"], filled["next_obs"], filled["terminated"].float())
        draw = ring.sample
    else:
        buffer = ReplayBuffer.create(rows, (4,), device=device)
        buffer.extend(filled)
        draw = buffer.sample_tensors if impl == "tensors" else buffer.sample

    def sample() -> object:
        batch = draw(batch_size)
        synchronize(device)
        return batch

    return sample


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

    impl: `eager`, `autograd` (eager through `loss.backward()` instead of the written-out MLP
    backward), or `compiled-<mode>` for `torch.compile(mode=<mode>)`. The first call compiles, so
    its time is the cold compile time; it is reported apart from the steady state.
    """
    compiled = impl.startswith("compiled-")
    if compiled:
        torch._dynamo.reset()  # each case compiles from cold: no graphs or guards left by the last one
    mode = impl.removeprefix("compiled-") if compiled else "default"
    cfg = Config(hidden_dim=hidden_dim, batch_size=batch_size, device=device, compile="on" if compiled else "off", compile_mode=mode)
    agent = DQNAgent(cfg, CARTPOLE)
    if impl == "autograd":
        agent.explicit_backward = False
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
