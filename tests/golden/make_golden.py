"""Record the golden trajectories the engine must keep reproducing: `python tests/golden/make_golden.py`.

Each record is what one run leaves behind, read through the public results only: the stored replay
rows (and the sampler's state: the sum tree under PER), the loss of every gradient update, the
metric rows, and the final online and target weights. The runs use the settings the fixture was
recorded with (the speed tune of the time, then the `cartpole` preset, later `cartpole-fast`,
written out in `RECORDED` so retuning a preset leaves the records alone) on CPU with one torch
thread for its first 2,000 env steps, seed 1 (an evaluation every 1,000 env steps), and three
variants: PER, the dueling head, and a K = 3 group (seeds 1-3) with the single runs of seeds 2 and
3 beside it, so a member can be held against its own single run.

The per-update losses come from a hook on the one update call of each engine (`_update_hooks`); it
only clones the loss the update returns, so it changes nothing it records. When the engine's update
moves, move the hook with it: the records themselves must not change.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

import fastdqn
from fastdqn.config import Config

FIXTURE = Path(__file__).with_name("cartpole_2000.pt")
STEPS = 2_000


RECORDED = Config(n_step=3, buffer_capacity=10_000, target_update_every=64, eval_every_steps=1_000, preset="cartpole-fast")
"""The settings the fixture was recorded with: Config()'s values (16 envs, 4 updates of 64 per
vector step) and the speed tune's four; cartpole-fast held exactly these until it was retuned."""


def golden_config(out_dir: Path | str, **values: Any) -> Config:
    """The recorded settings, shortened to the golden window, on CPU, one thread, no plot."""
    base = RECORDED
    settings: dict[str, Any] = {"total_steps": STEPS, "device": "cpu", "torch_threads": 1, "seed": 1, "save_plot": False, "compile": "off"}
    return base.replace(**{**settings, "out_dir": str(out_dir), **values})


@contextlib.contextmanager
def _update_hooks(losses: list[torch.Tensor]) -> Iterator[None]:
    """Append a clone of every update's loss to `losses` while the block runs."""
    from fastdqn.agent import DQNAgent
    from fastdqn.members import MemberAgents

    patched: list[tuple[type, str, Callable[..., Any]]] = []
    for cls in (DQNAgent, MemberAgents):
        original = cls.update

        def hooked(self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            stats = _original(self, *args, **kwargs)
            losses.append(stats["loss"].detach().clone())
            return stats

        patched.append((cls, "update", original))
        setattr(cls, "update", hooked)  # noqa: B010
    try:
        yield
    finally:
        for cls, name, original in patched:
            setattr(cls, name, original)


def _metric_losses(rows: Sequence[dict[str, Any]]) -> list[tuple[int, float | None]]:
    return [(int(row["env_steps"]), row.get("loss")) for row in rows]


def _weights(result: Any) -> dict[str, torch.Tensor]:
    agent = result.agent
    return {"online": agent.online.data.clone(), "target": agent.target.data.clone()}


def digest(value: Any) -> str:
    """A sha256 over every tensor (and plain value) in `value`, in key order: rows compared bit for bit in 64 bytes."""
    hasher = hashlib.sha256()

    def feed(item: Any) -> None:
        if isinstance(item, torch.Tensor):
            hasher.update(f"{item.dtype}{tuple(item.shape)}".encode())
            hasher.update(item.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(item, dict):
            for key in sorted(item):
                hasher.update(str(key).encode())
                feed(item[key])
        elif isinstance(item, (list, tuple)):
            for part in item:
                feed(part)
        else:
            hasher.update(repr(item).encode())

    feed(value)
    return hasher.hexdigest()


def record_single(**values: Any) -> dict[str, Any]:
    """One single run of `golden_config(**values)`: replay rows, losses, metric rows, final weights."""
    losses: list[torch.Tensor] = []
    with tempfile.TemporaryDirectory() as tmp, _update_hooks(losses):
        result = fastdqn.train(golden_config(tmp, **values))
    return {
        "replay": result.buffer.state_dict(),
        "losses": torch.stack(losses) if losses else torch.zeros(0),
        "metric_losses": _metric_losses(result.metrics),
        "updates": result.agent.updates,
        **_weights(result),
    }


def record_group(seeds: Sequence[int], **values: Any) -> dict[str, Any]:
    """One group of `golden_config(seed=s, **values)` for each seed: per-member rows, weights, losses."""
    from fastdqn.group import train_many

    losses: list[torch.Tensor] = []
    with tempfile.TemporaryDirectory() as tmp, _update_hooks(losses):
        results = train_many([golden_config(tmp, **{**values, "seed": seed}) for seed in seeds])
    return {
        "members": [
            {"replay": digest(r.buffer.state_dict()), "metric_losses": _metric_losses(r.metrics), "updates": r.agent.updates, **_weights(r)}
            for r in results
        ],
        "losses": [loss.clone() for loss in losses],
    }


def record_all() -> dict[str, Any]:
    torch.set_num_threads(1)
    return {
        "torch": torch.__version__,
        "single": record_single(),
        "single_s2": _weights_only(record_single(seed=2)),
        "single_s3": _weights_only(record_single(seed=3)),
        "per": _rows_digested(record_single(per=True)),
        "dueling": _rows_digested(record_single(network="dueling")),
        "group": record_group([1, 2, 3]),
    }


def _weights_only(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in ("online", "target", "updates", "metric_losses")}


def _rows_digested(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "replay": digest(record["replay"])}


def main() -> None:
    golden = record_all()
    torch.save(golden, FIXTURE)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
