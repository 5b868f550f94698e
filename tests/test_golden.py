"""The golden trajectories: a fresh run reproduces what tests/golden/cartpole_2000.pt recorded.

A single run (K = 1), with PER and with the dueling head, must match bit for bit: the same replay
rows, the same loss at every update, the same final weights. Each member of a K = 3 group must match
its own single run to float tolerance (its batched kernels sum in another order): with uniform
replay and the dueling head over the whole window; with PER over its first 52 updates, since a
priority a rounding apart moves a stratum's boundary and from there the trajectories part. Regenerate the
fixture only on purpose, with `python tests/golden/make_golden.py`, and say why in the commit.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from golden.make_golden import FIXTURE, digest, record_group, record_single

GOLDEN: dict[str, Any] = torch.load(FIXTURE, weights_only=False)
pytestmark = pytest.mark.skipif(
    GOLDEN["torch"] != torch.__version__,
    reason=f"the golden trajectories were recorded with torch {GOLDEN['torch']}: bit equality is per build",
)


def assert_same_run(run: dict[str, Any], golden: dict[str, Any]) -> None:
    replay = run["replay"]
    if isinstance(golden["replay"], str):  # variants keep a digest of their rows, the plain run the rows
        assert digest(replay) == golden["replay"], "the stored replay rows (or sampler state) differ"
    else:
        assert replay["cursor"] == golden["replay"]["cursor"] and replay["size"] == golden["replay"]["size"]
        for name, rows in golden["replay"]["storage"]["fields"].items():
            assert torch.equal(replay["storage"]["fields"][name], rows), f"stored {name} rows differ"
        assert digest(replay["sampler"]) == digest(golden["replay"]["sampler"]), "the sampler's state differs"
    assert run["updates"] == golden["updates"]
    assert torch.equal(run["losses"], golden["losses"]), "a per-update loss differs"
    assert run["metric_losses"] == golden["metric_losses"]
    assert torch.equal(run["online"], golden["online"]), "the final online weights differ"
    assert torch.equal(run["target"], golden["target"]), "the final target weights differ"


@pytest.mark.parametrize(
    ("name", "values"),
    [("single", {}), ("per", {"per": True}), ("dueling", {"network": "dueling"})],
)
def test_single_run_reproduces_golden_trajectory_bit_for_bit(name: str, values: dict[str, Any]) -> None:
    assert_same_run(record_single(**values), GOLDEN[name])


def test_group_members_reproduce_their_single_runs_to_float_tolerance() -> None:
    group = record_group([1, 2, 3])
    singles = [GOLDEN["single"], GOLDEN["single_s2"], GOLDEN["single_s3"]]
    for member, single, recorded in zip(group["members"], singles, GOLDEN["group"]["members"], strict=True):
        assert member["updates"] == single["updates"]
        for name in ("online", "target"):
            torch.testing.assert_close(member[name], single[name], rtol=0, atol=1e-5)
            torch.testing.assert_close(member[name], recorded[name], rtol=0, atol=1e-5)
        for (step, loss), (single_step, single_loss) in zip(member["metric_losses"], single["metric_losses"], strict=True):
            assert step == single_step
            assert loss == pytest.approx(single_loss, rel=1e-4)
    assert group["members"][0]["replay"] == digest(GOLDEN["single"]["replay"]), "member 1's rows differ from its single run's"


@pytest.mark.parametrize(("values", "steps"), [({"network": "dueling"}, 2_000), ({"per": True}, 1_200)])
def test_group_members_with_an_option_reproduce_their_single_runs(values: dict[str, Any], steps: int) -> None:
    group = record_group([1, 2, 3], total_steps=steps, **values)
    for seed, member in zip((1, 2, 3), group["members"], strict=True):
        single = record_single(seed=seed, total_steps=steps, **values)
        assert member["updates"] == single["updates"] > 0
        for name in ("online", "target"):
            torch.testing.assert_close(member[name], single[name], rtol=0, atol=1e-5)
    if steps == 2_000:
        torch.testing.assert_close(group["members"][0]["online"], GOLDEN["dueling"]["online"], rtol=0, atol=1e-5)
