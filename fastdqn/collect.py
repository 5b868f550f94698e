"""Collection: one vector step of act -> env step -> replay write, as the training loop calls it.

`Collector` is the general path: any env, any storage, n-step windows, host round trips where a
Gymnasium env needs them. `FusedCollector` is the device path for a native env (envs/classic.py)
with one-step rows in a tensor ring: the whole step is one function of device tensors with static
shapes and no host reads, so it can be compiled (`torch.compile` fuses its ops into a few kernels)
or, on CUDA, captured once and replayed as a CUDA graph. To make that possible it
- keeps the observation in a static buffer that each step overwrites in place;
- draws exploration from a counter-based hash (`hash32`, as the native envs' resets do) instead of
  a `torch.Generator`, whose state a graph cannot advance;
- writes rows at a write position held on the device, mirrored on the host by `RingWriter`
  (N rows a step, so the host always knows where the device cursor is without asking).
Eager, compiled and captured runs of it give the same rows, actions and weights (tests/test_collect.py).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from fastdqn.agent import DQNAgent
from fastdqn.buffer import ReplayBuffer, TensorStorage, UniformSampler
from fastdqn.envs import DeviceVectorEnv, EnvStep, TorchVectorEnv
from fastdqn.envs.classic import hash32
from fastdqn.networks import FrozenForward
from fastdqn.nstep import NStepWriter

FuseMode = Literal["eager", "compile", "cuda_graph"]
_M32 = 0xFFFFFFFF


class Collector:
    """act -> env step -> replay write for any env and storage; `obs` (N, *obs_shape) is what the next step acts on."""

    def __init__(self, agent: DQNAgent, envs: DeviceVectorEnv, buffer: ReplayBuffer, nstep: NStepWriter | None = None):
        self.agent, self.envs, self.buffer, self.nstep = agent, envs, buffer, nstep
        self.env_ids = torch.arange(envs.num_envs, device=envs.device)  # lets FrameStorage link each env's rows
        self.obs = torch.zeros(0)

    def reset(self, seed: int) -> None:
        self.obs = self.envs.reset(seed=seed)

    def step(self, epsilon: float) -> EnvStep:
        actions = self.agent.act(self.obs, epsilon)  # (N,) on the device
        step = self.envs.step(actions)
        rows = step.transitions(self.obs, actions, self.env_ids) if self.nstep is None else self.nstep.push_step(self.obs, actions, step)
        self.buffer.extend(rows)
        self.obs = step.next_obs
        return step

    def state_dict(self) -> dict[str, Any]:
        return {"obs": self.obs.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs = state["obs"].to(self.envs.device)


def fuse_blockers(envs: DeviceVectorEnv, buffer: ReplayBuffer, nstep: NStepWriter | None) -> list[str]:
    """What keeps this run from the fused step, each as the option that would change it; empty when it can fuse.

    The fused step covers native envs writing one-step rows into a tensor ring with uniform sampling.
    """
    blockers = []
    if not isinstance(envs, TorchVectorEnv):
        blockers.append("a native env (--env-backend torch: CartPole-v1, Acrobot-v1, MountainCar-v0)")
    if nstep is not None or "discount" in getattr(buffer.storage, "fields", {}):
        blockers.append("--n-step 1")
    if not isinstance(buffer.sampler, UniformSampler):
        blockers.append("no --per")
    if not isinstance(buffer.storage, TensorStorage):
        blockers.append("--replay-storage tensor")
    if buffer.capacity < envs.num_envs:
        blockers.append(f"--buffer-capacity at least --num-envs ({envs.num_envs})")
    return blockers


def can_fuse(envs: DeviceVectorEnv, buffer: ReplayBuffer, nstep: NStepWriter | None) -> bool:
    """The fused step covers native envs writing one-step rows into a tensor ring with uniform sampling."""
    return not fuse_blockers(envs, buffer, nstep)


class FusedCollector(Collector):
    """The whole vector step on the device, eager, compiled or replayed as a CUDA graph (see the module docstring).

    Args:
        mode: `eager` (the reference), `compile` (`torch.compile` of the step) or `cuda_graph`
            (captured on the first step, replayed after; CUDA only).
    """

    def __init__(self, agent: DQNAgent, envs: TorchVectorEnv, buffer: ReplayBuffer, mode: FuseMode = "eager"):
        super().__init__(agent, envs, buffer)
        if not can_fuse(envs, buffer, None) or not isinstance(buffer.storage, TensorStorage):
            raise ValueError("FusedCollector needs a native env and a uniform tensor ring without n-step rows")
        if mode == "cuda_graph" and envs.device.type != "cuda":
            raise ValueError("mode='cuda_graph' needs a CUDA device")
        self.native = envs
        self.storage = buffer.storage
        self.mode = mode
        envs.branch_on_host = False  # a host branch would break the graph (and recompile the compiled step)
        device, n = envs.device, envs.num_envs
        self.q = FrozenForward(agent.q_network, views=False)  # module parameters: static addresses for a graph
        self.obs = torch.zeros((n, *envs.spaces.obs_shape), dtype=envs.spaces.obs_dtype, device=device)
        self.epsilon = torch.zeros((), device=device)
        self.cursor = torch.zeros((), dtype=torch.int64, device=device)
        self.rows = torch.arange(n, device=device)
        self.draws = torch.zeros((), dtype=torch.int64, device=device)
        """Exploration draws so far: the counter of each env's coin stream."""
        streams = torch.arange(2 * n, device=device, dtype=torch.int64).view(n, 2)
        seed_key = hash32(torch.tensor((agent.cfg.seed + 1) & _M32, device=device))
        self.coin_streams = hash32((seed_key + hash32(streams + 1)) & _M32)  # (N, 2): env i's coin and random action
        self.outputs: tuple[Tensor, Tensor, Tensor] | None = None
        self.graph: Any = None
        self._step_fn: Any = self._device_step
        if mode == "compile":
            self._step_fn = torch.compile(self._device_step, dynamic=False)

    def reset(self, seed: int) -> None:
        self.obs.copy_(self.envs.reset(seed=seed))
        self.cursor.fill_(self.buffer.writer.cursor)

    def _device_step(self) -> tuple[Tensor, Tensor, Tensor]:
        """One vector step, in place on static tensors: returns reward, terminated, truncated (N,)."""
        n_actions = self.native.n_actions
        greedy = self.q(self.obs).argmax(dim=1)  # (N,)
        bits = hash32((self.coin_streams + self.draws * 0x61C88647) & _M32)  # (N, 2)
        uniforms = (bits >> 8).to(torch.float32) * 2.0**-24
        random_actions = (uniforms[:, 1] * n_actions).to(torch.int64).clamp_(max=n_actions - 1)
        actions = torch.where(uniforms[:, 0] < self.epsilon, random_actions, greedy)
        step = self.native.step(actions)
        where = (self.cursor + self.rows) % self.storage.capacity
        rows = {"obs": self.obs, "action": actions, "reward": step.reward, "next_obs": step.final_obs, "terminated": step.terminated}
        for name, field in self.storage.fields.items():
            field.index_copy_(0, where, rows[name].to(field.dtype))
        self.cursor.copy_((self.cursor + self.rows.shape[0]) % self.storage.capacity)
        self.draws.add_(1)
        self.obs.copy_(step.next_obs)
        return step.reward.clone(), step.terminated.clone(), step.truncated.clone()

    def step(self, epsilon: float) -> EnvStep:
        self.epsilon.fill_(epsilon)
        if self.mode == "cuda_graph":
            if self.graph is None:
                self.outputs = self._capture()
            self.graph.replay()
            assert self.outputs is not None
            reward, terminated, truncated = self.outputs
        else:
            reward, terminated, truncated = self._step_fn()
        self.buffer.writer.advance(self.native.num_envs, self.obs.device)  # the host mirror of the device cursor
        # the rows are written already: the caller reads reward and the done flags (for episode
        # bookkeeping); the observations are the static buffer the next step acts on
        return EnvStep(self.obs, reward, terminated, truncated, self.obs)

    def _capture(self) -> tuple[Tensor, Tensor, Tensor]:
        """Record one step as a CUDA graph. The warm-up step (run on a side stream, so that lazy
        initialisation and workspace allocation happen outside the capture) is undone; the capture
        itself only records kernels, and each replay then runs the step once."""
        with torch.cuda.device(self.obs.device):  # the capture stream must belong to the env's device (cuda:N)
            saved = self._snapshot()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                self._device_step()
            torch.cuda.current_stream().wait_stream(stream)
            self._restore(saved)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                outputs = self._device_step()
        return outputs

    def _state(self) -> list[Tensor]:
        env = self.native
        return [self.obs, self.cursor, self.draws, env.state, env.steps, env.resets]

    def _snapshot(self) -> dict[str, Any]:
        """What one step changes: the loop's and env's state, and the N ring rows it writes (not the whole ring)."""
        rows = (self.cursor + self.rows) % self.storage.capacity
        return {
            "state": [t.clone() for t in self._state()],
            "rows": rows,
            "fields": {name: field.index_select(0, rows) for name, field in self.storage.fields.items()},
        }

    def _restore(self, saved: dict[str, Any]) -> None:
        for tensor, value in zip(self._state(), saved["state"], strict=True):
            tensor.copy_(value)
        for name, field in self.storage.fields.items():
            field.index_copy_(0, saved["rows"], saved["fields"][name])

    def state_dict(self) -> dict[str, Any]:
        return {"obs": self.obs.cpu().clone(), "draws": self.draws.cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs.copy_(state["obs"])
        if "draws" in state:
            self.draws.copy_(state["draws"])
        self.cursor.fill_(self.buffer.writer.cursor)


def make_collector(agent: DQNAgent, envs: DeviceVectorEnv, buffer: ReplayBuffer, nstep: NStepWriter | None) -> Collector:
    """The fused device step where `cfg.fuse_step` asks for it and the run allows it, else the general path."""
    from fastdqn.config import ConfigError

    choice = agent.cfg.fuse_step
    fuse = choice == "on" or (choice == "auto" and envs.device.type == "cuda")
    if fuse and can_fuse(envs, buffer, nstep):
        assert isinstance(envs, TorchVectorEnv)
        return FusedCollector(agent, envs, buffer, "cuda_graph" if envs.device.type == "cuda" else "compile")
    if choice == "on":
        raise ConfigError(f"--fuse-step on needs {' and '.join(fuse_blockers(envs, buffer, nstep))}; drop --fuse-step or change that")
    return Collector(agent, envs, buffer, nstep)
