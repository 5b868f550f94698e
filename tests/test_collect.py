"""The fused device step: eager, compiled and CUDA-graph runs agree, and a run through it learns like any other."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from configs import quiet_config

import fastdqn
from fastdqn.collect import Collector, FusedCollector, FuseMode, make_collector
from fastdqn.envs import TorchVectorEnv, make_envs
from fastdqn.train import TrainingInterrupted

CUDA_ONLY = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def fused(mode: FuseMode, device: str = "cpu", num_envs: int = 16, seed: int = 0) -> FusedCollector:
    cfg = quiet_config("unused", env_backend="torch", num_envs=num_envs, device=device, seed=seed)
    envs = make_envs("CartPole-v1", num_envs, backend="torch", device=device)
    assert isinstance(envs, TorchVectorEnv)
    agent = fastdqn.DQNAgent(cfg, envs.spaces, device)
    buffer = fastdqn.ReplayBuffer.create(max(256, num_envs), envs.spaces.obs_shape, device=device)
    collector = FusedCollector(agent, envs, buffer, mode)
    collector.reset(seed)
    return collector


def run_steps(collector: FusedCollector, steps: int) -> list[tuple[torch.Tensor, ...]]:
    outputs = []
    for i in range(steps):
        step = collector.step(epsilon=max(1.0 - i / steps, 0.1))
        outputs.append((step.reward.cpu().clone(), step.terminated.cpu().clone(), step.truncated.cpu().clone()))
    return outputs


def test_fused_step_stores_what_the_general_path_stores() -> None:
    """Greedy, the fused step and act + env step + extend store the same rows (exploration draws differ by design)."""
    a = fused("eager")
    b_envs = make_envs("CartPole-v1", 16, backend="torch")
    b_buffer = fastdqn.ReplayBuffer.create(256, (4,))
    b = Collector(a.agent, b_envs, b_buffer)
    b.reset(0)
    for _ in range(40):
        a.step(0.0)
        b.step(0.0)
    for name, field in a.storage.fields.items():
        assert torch.equal(field, b_buffer.storage.fields[name]), name
    assert len(a.buffer) == len(b_buffer) == 256 and a.buffer.writer.cursor == b_buffer.writer.cursor == 640 % 256


def test_fused_step_explores_per_env_with_epsilon() -> None:
    collector = fused("eager", num_envs=512)
    greedy = collector.q(collector.obs).argmax(dim=1)
    collector.step(0.5)
    actions = collector.storage.fields["action"][:512]
    share = (actions != greedy).float().mean().item()  # half explore, half of those pick the other action
    assert 0.18 < share < 0.32


def test_undoing_a_step_as_the_cuda_capture_does_leaves_nothing_behind() -> None:
    """The capture's warm-up step is undone from a snapshot: afterwards one step equals one step of a twin."""
    undone, twin = fused("eager", num_envs=16), fused("eager", num_envs=16)
    twin.agent.q_network.load_state_dict(undone.agent.q_network.state_dict())
    for collector in (undone, twin):
        for _ in range(20):  # past the ring's wrap (256 rows), so the snapshot's rows wrap too
            collector.step(0.5)
    saved = undone._snapshot()
    undone._device_step()
    undone._restore(saved)
    a, b = undone.step(0.5), twin.step(0.5)
    assert torch.equal(a.reward, b.reward) and torch.equal(a.terminated, b.terminated)
    for name, field in undone.storage.fields.items():
        assert torch.equal(field, twin.storage.fields[name]), name
    assert torch.equal(undone.obs, twin.obs) and torch.equal(undone.native.state, twin.native.state)


def test_compiled_fused_step_matches_the_eager_one() -> None:
    eager, compiled = fused("eager"), fused("compile")
    compiled.agent.q_network.load_state_dict(eager.agent.q_network.state_dict())
    out_eager, out_compiled = run_steps(eager, 30), run_steps(compiled, 30)
    for (r1, t1, u1), (r2, t2, u2) in zip(out_eager, out_compiled, strict=True):
        assert torch.equal(r1, r2) and torch.equal(t1, t2) and torch.equal(u1, u2)
    for name, field in eager.storage.fields.items():
        assert torch.allclose(field.float(), compiled.storage.fields[name].float(), atol=1e-5), name


@CUDA_ONLY
@pytest.mark.cuda
def test_cuda_graph_step_matches_the_eager_one() -> None:
    eager, captured = fused("eager", "cuda"), fused("cuda_graph", "cuda")
    captured.agent.q_network.load_state_dict(eager.agent.q_network.state_dict())
    for a, b in zip(run_steps(eager, 50), run_steps(captured, 50), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    for name, field in eager.storage.fields.items():
        assert torch.equal(field, captured.storage.fields[name]), name
    assert torch.equal(eager.obs, captured.obs) and captured.graph is not None


def test_fuse_step_on_is_refused_where_the_step_cannot_be_fused(tmp_path: Path) -> None:
    cfg = quiet_config(tmp_path, fuse_step="on", total_steps=2_000)
    with pytest.raises(fastdqn.ConfigError, match="--fuse-step on needs a native env"):
        fastdqn.train(cfg)


@pytest.mark.parametrize(
    ("changes", "named", "not_named"),
    [
        ({"per": True}, "no --per", "native env"),
        ({"n_step": 3}, "--n-step 1", "--per"),
        ({"per": True, "n_step": 3}, "--n-step 1 and no --per", "native env"),
    ],
)
def test_fuse_step_refusal_names_only_what_blocks_it(tmp_path: Path, changes: dict[str, object], named: str, not_named: str) -> None:
    cfg = quiet_config(tmp_path, env_backend="torch", fuse_step="on", total_steps=2_000, **changes)
    with pytest.raises(fastdqn.ConfigError) as refused:
        fastdqn.train(cfg)
    message = str(refused.value)
    assert message.startswith("--fuse-step on needs") and named in message and not_named not in message
    assert "\n" not in message


def test_fuse_step_auto_keeps_the_general_path_on_cpu() -> None:
    cfg = quiet_config("unused", env_backend="torch")
    envs = make_envs("CartPole-v1", 16, backend="torch")
    agent = fastdqn.DQNAgent(cfg, envs.spaces)
    collector = make_collector(agent, envs, fastdqn.ReplayBuffer.create(1_000, (4,)), None)
    assert type(collector) is Collector


def test_fused_run_resumes_exactly_and_same_seed_same_curve(tmp_path: Path) -> None:
    def cfg(name: str) -> fastdqn.Config:
        values = {"env_backend": "torch", "fuse_step": "on", "total_steps": 3_000, "learning_starts": 500, "num_envs": 16}
        values |= {"log_every_steps": 500, "checkpoint_every_steps": 1_000, "run_name": "run", "seed": 5}
        return quiet_config(tmp_path / name, **values)

    straight = fastdqn.train(cfg("a"))
    again = fastdqn.train(cfg("b"))
    with pytest.raises(TrainingInterrupted):
        fastdqn.train(cfg("c"), interrupt_at_step=1_600)
    resumed = fastdqn.train(cfg("c"), resume=tmp_path / "c" / "run")
    for run in (again, resumed):
        assert torch.equal(run.agent.online.data, straight.agent.online.data)
        for name, stored in straight.buffer.storage.fields.items():
            assert torch.equal(run.buffer.storage.fields[name], stored), name
    assert (tmp_path / "c" / "run" / "episodes.csv").read_text() == (tmp_path / "a" / "run" / "episodes.csv").read_text()


@CUDA_ONLY
@pytest.mark.cuda
@pytest.mark.parametrize("fuse", [False, True])
def test_native_collection_on_cuda_never_syncs_with_the_host(fuse: bool) -> None:
    """act + env step + replay write + episode bookkeeping between log intervals: zero host syncs."""
    from fastdqn.episodes import EpisodeTracker

    collector: Collector = fused("cuda_graph", "cuda") if fuse else fused("eager", "cuda")
    if not fuse:  # the general path over the same native env
        collector = Collector(collector.agent, collector.envs, collector.buffer)
        collector.reset(0)
    tracker = EpisodeTracker(16, torch.device("cuda"), log_steps=1_000)
    for _ in range(8):  # the first fused step captures the graph, the first update compiles: both may synchronise
        collector.step(1.0)
    collector.agent.update(collector.buffer.sample_tensors(64))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(200):
            tracker.record(collector.step(0.5), (i + 1) * 16)
            collector.agent.update(collector.buffer.sample_tensors(64))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert tracker.logged == 200
