"""`fastdqn train --actors N`: Ape-X on Ray. N actor processes collect; one learner stores, updates and broadcasts.

The learner is the single-process loop (`engine.run`, fed by `actor_source.ActorSource`) on the training device. It never
blocks on one actor: each actor has `IN_FLIGHT` chunk requests outstanding, and `ray.wait` hands over
whichever chunk is ready first. A chunk's rows go into the replay ring (with their initial priorities
under PER, Ape-X's choice), then the learner owes `env_steps / (num_envs * train_every)` rounds of
`gradient_steps` updates, exactly the single-process replay ratio, and pays them before it takes the
next chunk. An actor that has produced its requests waits for new ones, so the learner, not Ray's
object store, is where a backlog shows: `queue_depth` in `actors.csv` counts the chunks ready and not
yet taken. Weights go out every `weights_every` updates as one `ray.put`, which every actor's next
request references (no copy per actor).

Faults: a request that fails (the actor died or was killed, its env raised) is a lost chunk, counted
in `actors.csv`, and a restart of that actor. A dead actor's process is restarted by Ray
(`max_restarts`) and pinged until it answers; an actor whose env raised lives on and rebuilds its
envs. Either resumes from a fresh env reset with the newest weights. Only an actor that fails
`MAX_FAILURES_IN_ROW` times without a chunk between stops the run, with the checkpoints written
before it kept. Resumed runs restart their actors fresh.
"""

from __future__ import annotations

import csv
import math
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastdqn.actors import RolloutWorker, ape_x_epsilons
from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer
from fastdqn.config import Config, ConfigError
from fastdqn.engine import TrainingFailed
from fastdqn.finite import NonFiniteEnvOutput
from fastdqn.metrics import _keep_rows
from fastdqn.run_state import RunResult
from fastdqn.schedules import epsilon_at

IN_FLIGHT = 2
"""Chunk requests outstanding per actor: it starts the next chunk while the learner takes the last."""
MAX_FAILURES_IN_ROW = 3
"""Failed requests of one actor, with no chunk between, that stop the run."""
ACTOR_START_TIMEOUT_S = 180.0
"""Seconds a failed actor may take to answer again (a process start imports torch: slow on a busy machine)."""
INSTALL = 'pip install -e ".[ray]" (or pip install "ray>=2.9")'


def require_ray() -> Any:
    """The `ray` module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--actors needs Ray, an optional extra: {INSTALL}") from None
    return ray


def connect(cfg: Config) -> bool:
    """Join `cfg.ray_address` or start a local runtime on `cfg.ray_cpus` cores; True when this call started one."""
    ray = require_ray()
    address = cfg.ray_address
    if address not in (None, "auto"):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"ray_address={address!r} is not `auto` or HOST:PORT; pass e.g. --ray-address 10.0.0.5:6379")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()  # Ray itself retries for a minute before it says so
        except OSError as error:
            raise ConfigError(
                f"cannot reach a Ray cluster at {address} ({error.strerror or error}); start one there with "
                f"`ray start --head --port {port}`, or drop --ray-address to start a local runtime"
            ) from None
    if ray.is_initialized():
        return False  # a caller's runtime (a test, a notebook): used as it is, left running
    try:
        if address is None:
            ray.init(num_cpus=cfg.ray_cpus or os.cpu_count(), include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        where = "a local Ray runtime" if address is None else f"the Ray cluster at {address}"
        raise ConfigError(f"could not start or join {where}: {first}; check `ray status`, or drop --ray-address") from None
    return True


def actor_runtime_env() -> dict[str, Any]:
    """Actors import the fastdqn this process runs (a checkout included) and the modules env ids came from."""
    import fastdqn

    here = str(Path(fastdqn.__file__).resolve().parent.parent)
    local = [p for p in sys.path if p and not p.startswith((sys.prefix, sys.base_prefix))]
    paths = [here, os.getcwd(), *local, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in paths if p))}}


def extend_with_priorities(buffer: ReplayBuffer, rows: dict[str, torch.Tensor], priorities: torch.Tensor | None) -> None:
    """`buffer.extend(rows)`, then, with prioritized replay, give the written rows `priorities` (M,) |TD errors|."""
    n, cursor = int(rows["action"].shape[0]), buffer.writer.cursor
    buffer.extend(rows)
    if priorities is None or n == 0:
        return
    kept = min(n, buffer.capacity)  # a chunk longer than the ring keeps its newest rows, as extend does
    index = (cursor + n - kept + torch.arange(kept, device=buffer.device)) % buffer.capacity
    buffer.update_priorities(index, priorities[n - kept :].to(buffer.device))


@dataclass
class DistributedResult(RunResult):
    actor_env_steps: list[int] = field(default_factory=list)
    actor_restarts: list[int] = field(default_factory=list)
    lost_chunks: int = 0


class ActorPool:
    """N Ray actors running `RolloutWorker`, each with `IN_FLIGHT` requests out; see the module docstring."""

    def __init__(self, ray: Any, cfg: Config, seed_base: int):
        self.ray, self.cfg, self.seed_base = ray, cfg, seed_base
        n = cfg.actors
        cores = cfg.ray_cpus or os.cpu_count() or 1
        cpus = 1.0 if cfg.ray_address is not None else min(1.0, math.floor(10_000 * cores / n) / 10_000)  # fit N actors on the cores
        remote = ray.remote(RolloutWorker).options(num_cpus=cpus, max_restarts=-1, max_task_retries=0, runtime_env=actor_runtime_env())
        self.handles = [remote.remote(cfg, i) for i in range(n)]
        self.epsilons = ape_x_epsilons(n, cfg.actor_epsilon) if n > 1 else None
        self.in_flight: dict[Any, tuple[int, int, str]] = {}  # ref -> (actor, generation, "collect" | "ping")
        self.generation = [0] * n
        self.fresh = [True] * n  # the next request resets its envs
        self.sent_version = [-1] * n
        self.failures_in_row = [0] * n
        self.retry_ping_at: dict[int, float] = {}
        self.down_since = [0.0] * n
        self.instances: list[str | None] = [None] * n
        self.env_steps = [0] * n
        self.restarts = [0] * n
        self.lost_chunks = 0
        self.weights_ref: Any = None
        self.version = -1
        self.published_at = 0
        self.run_env_steps = 0
        self.wait_seconds = 0.0
        """Seconds the learner spent waiting for a chunk (a learner that waits is not the bottleneck)."""
        self.lag_sum, self.chunks = 0, 0

    def publish(self, agent: DQNAgent) -> None:
        """One `ray.put` of the (online, target) weights that every actor's next request carries."""
        weights = (agent.online.data.detach().cpu().numpy().copy(), agent.target.data.detach().cpu().numpy().copy())
        self.weights_ref = self.ray.put(weights)
        self.version += 1
        self.published_at = agent.updates

    def start(self) -> None:
        for actor in range(len(self.handles)):
            for _ in range(IN_FLIGHT):
                self._submit(actor)

    def _submit(self, actor: int) -> None:
        seed = None
        if self.fresh[actor]:
            seed = self.seed_base + 7_919 * (actor + 1) + 104_729 * self.generation[actor]
            self.fresh[actor] = False
        weights = self.weights_ref if self.sent_version[actor] != self.version else None
        epsilon = self.epsilons[actor] if self.epsilons is not None else epsilon_at(self.cfg, self.run_env_steps)
        ref = self.handles[actor].collect.remote(weights, self.version, seed, epsilon)
        self.sent_version[actor] = self.version
        self.in_flight[ref] = (actor, self.generation[actor], "collect")

    def _ping(self, actor: int) -> None:
        self.in_flight[self.handles[actor].ping.remote()] = (actor, self.generation[actor], "ping")

    def next_chunk(self, timeout: float) -> dict[str, Any] | None:
        """The first chunk any actor has ready, or None (nothing within `timeout` s, or a request failed)."""
        now = time.perf_counter()
        for actor, at in list(self.retry_ping_at.items()):
            if now >= at:
                del self.retry_ping_at[actor]
                self._ping(actor)
        requests = list(self.in_flight)  # in the order they were sent
        ready, _ = self.ray.wait(requests, num_returns=len(requests), timeout=0)
        if not ready:
            ready, _ = self.ray.wait(requests, num_returns=1, timeout=timeout)
        self.wait_seconds += time.perf_counter() - now
        if not ready:
            return None
        # The oldest ready request first: a fast actor's newer chunks never keep a slower (or restarted) one's waiting.
        ref = min(ready, key=requests.index)
        actor, generation, kind = self.in_flight.pop(ref)
        try:
            value = self.ray.get(ref)
        except self.ray.exceptions.RayError as error:
            self._failed(actor, generation, kind, error)
            return None
        if kind == "ping":  # restarted and answering: back to work
            for _ in range(IN_FLIGHT):
                self._submit(actor)
            return None
        if generation == self.generation[actor]:  # an older request may come from the process before a restart
            known = self.instances[actor]
            if known is not None and value["instance"] != known:
                # Ray restarted it between requests (it died with none running): no chunk lost, but its weights are gone
                self.restarts[actor] += 1
                self.generation[actor] += 1
                self.fresh[actor], self.sent_version[actor] = True, -1
            self.instances[actor] = value["instance"]
        self.failures_in_row[actor] = 0
        self.env_steps[actor] += int(value["env_steps"])
        self.lag_sum += self.version - int(value["weights_version"])
        self.chunks += 1
        self._submit(actor)
        chunk: dict[str, Any] = value
        return chunk

    def _failed(self, actor: int, generation: int, kind: str, error: Exception) -> None:
        died = isinstance(error, self.ray.exceptions.RayActorError)  # else its env raised and the process lives on
        if kind == "ping":  # still restarting: ask again shortly, for a while
            if time.perf_counter() - self.down_since[actor] > ACTOR_START_TIMEOUT_S:
                raise TrainingFailed(
                    f"actor {actor} did not come back within {ACTOR_START_TIMEOUT_S:.0f} s of failing; see `ray status`; "
                    f"checkpoints written before it are kept"
                )
            self.retry_ping_at[actor] = time.perf_counter() + 0.2
            return
        cause = getattr(error, "cause", None)
        if isinstance(cause, NonFiniteEnvOutput):  # the env's own values: a restart would meet them again
            raise TrainingFailed(f"actor {actor}: {cause.at_step(self.run_env_steps)}")
        self.lost_chunks += 1
        if generation != self.generation[actor]:  # an older request of an actor already being restarted
            if not died:
                self._submit(actor)  # the process is alive: keep its requests topped up
            return
        self.failures_in_row[actor] += 1
        if self.failures_in_row[actor] >= MAX_FAILURES_IN_ROW:
            last = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            raise TrainingFailed(
                f"actor {actor} failed {MAX_FAILURES_IN_ROW} times in a row (last: {last}); checkpoints written before it are kept"
            )
        self.restarts[actor] += 1
        self.generation[actor] += 1
        self.fresh[actor], self.sent_version[actor] = True, -1
        self.instances[actor] = None  # the next chunk names the new process
        if died:  # Ray restarts the process (max_restarts); ask until the new one answers, then send it work
            self.down_since[actor] = time.perf_counter()
            self._ping(actor)
        else:  # the actor rebuilds its envs on the reset seed this request carries
            self._submit(actor)

    def settle(self, timeout: float = 30.0) -> None:
        """At the end of a run, make the restart and lost-chunk counts say what happened even where the
        run ended first: count the requests that have failed by now (without sending new work), then ask
        each actor which process it is, since Ray may have restarted one whose new chunks were not needed."""
        if self.in_flight:
            ready, _ = self.ray.wait(list(self.in_flight), num_returns=len(self.in_flight), timeout=0)
            for ref in ready:
                actor, generation, kind = self.in_flight.pop(ref)
                try:
                    self.ray.get(ref)
                except self.ray.exceptions.RayError:
                    if kind != "collect":
                        continue
                    self.lost_chunks += 1
                    if generation == self.generation[actor]:  # the first failure seen of this process
                        self._count_restart(actor)
        asked = {self.handles[a].ping.remote(): a for a, known in enumerate(self.instances) if known is not None}
        ready, _ = self.ray.wait(list(asked), num_returns=len(asked), timeout=timeout)
        for ref in ready:
            actor = asked[ref]
            try:
                instance = self.ray.get(ref)
            except self.ray.exceptions.RayError:
                continue
            if instance != self.instances[actor]:
                self._count_restart(actor)

    def _count_restart(self, actor: int) -> None:
        self.restarts[actor] += 1
        self.generation[actor] += 1
        self.instances[actor] = None

    def queue_depth(self) -> int:
        """Chunks ready and not yet taken by the learner."""
        collects = [ref for ref, (_, _, kind) in self.in_flight.items() if kind == "collect"]
        if not collects:
            return 0
        ready, _ = self.ray.wait(collects, num_returns=len(collects), timeout=0)
        return len(ready)

    def close(self) -> None:
        for handle in self.handles:
            self.ray.kill(handle, no_restart=True)


class ActorLog:
    """`actors.csv`: per log interval, each actor's env steps/s, the learner's updates/s, its waiting share and the queue."""

    def __init__(self, run_dir: Path, actors: int, start_time: float, resume_at: int | None):
        self.columns = list(self.columns_for(actors))
        path = run_dir / "actors.csv"
        if resume_at is not None:
            _keep_rows(path, tuple(self.columns), resume_at)
        self.file = path.open("a" if resume_at is not None else "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=self.columns)
        if resume_at is None:
            self.writer.writeheader()
        self.start_time = start_time
        self.last: tuple[float, int, float, list[int], int, int] | None = None

    @staticmethod
    def columns_for(actors: int) -> tuple[str, ...]:
        fixed = ("env_steps", "wall_s", "updates_per_s", "learner_wait_frac", "queue_depth", "weights_lag", "lost_chunks", "actor_restarts")
        return (*fixed, *(f"actor{i}_sps" for i in range(actors)))

    def begin(self, updates: int, pool: ActorPool) -> None:
        """Count the first interval from here (a resumed run's actors bring their earlier env steps)."""
        self.last = (time.perf_counter(), updates, pool.wait_seconds, list(pool.env_steps), pool.lag_sum, pool.chunks)

    def log(self, env_steps: int, updates: int, pool: ActorPool) -> dict[str, Any]:
        now = time.perf_counter()
        t0, updates0, wait0, steps0, lag0, chunks0 = self.last or (self.start_time, 0, 0.0, [0] * len(pool.env_steps), 0, 0)
        elapsed = max(now - t0, 1e-9)
        chunks = pool.chunks - chunks0
        row: dict[str, Any] = {
            "env_steps": env_steps,
            "wall_s": round(now - self.start_time, 3),
            "updates_per_s": round((updates - updates0) / elapsed, 1),
            "learner_wait_frac": round(min((pool.wait_seconds - wait0) / elapsed, 1.0), 3),
            "queue_depth": pool.queue_depth(),
            "weights_lag": round((pool.lag_sum - lag0) / chunks, 2) if chunks else "",
            "lost_chunks": pool.lost_chunks,
            "actor_restarts": sum(pool.restarts),
        }
        for i, (steps, before) in enumerate(zip(pool.env_steps, steps0, strict=True)):
            row[f"actor{i}_sps"] = round((steps - before) / elapsed, 1)
        self.last = (now, updates, pool.wait_seconds, list(pool.env_steps), pool.lag_sum, pool.chunks)
        self.writer.writerow(row)
        self.file.flush()
        return row

    def close(self) -> None:
        self.file.close()
