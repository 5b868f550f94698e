"""One gradient step (MLP 2x256, CartPole rows, a fixed batch): eager against autograd and each torch.compile mode.

`eager` is the default eager update (the MLP's backward written out, fastdqn/backprop.py);
`autograd` is the same update through `loss.backward()`, as a compiled update runs it.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import cases
from bench.conftest import DEVICES, PROFILE, time_micro


def first_error_line(error: BaseException) -> str:
    """The line that names the real error: inductor wraps it as `backend='inductor' raised:` + the cause."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line for line in lines if "Error:" in line or "error:" in line]
    return (causes[0] if causes else lines[0] if lines else "")[:220]


IMPLS = ["eager", "autograd", *(f"compiled-{mode}" for mode in PROFILE.compile_modes)]


@pytest.mark.parametrize("batch_size", PROFILE.update_batches)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("device", DEVICES)
def bench_update(benchmark: Any, device: str, impl: str, batch_size: int) -> None:
    if impl.startswith("compiled-"):
        mode = impl.removeprefix("compiled-")
        if batch_size not in PROFILE.compile_batches:
            pytest.skip(f"the {PROFILE.name} profile compiles batch {', '.join(map(str, PROFILE.compile_batches))} only")
        reason = cases.compile_modes_for(device, PROFILE.compile_modes)[mode]
        if reason is not None:
            pytest.skip(reason)
    try:
        fn, first_call_s = cases.update(impl, batch_size, PROFILE.update_hidden, device)
    except Exception as error:  # a mode that does not compile on this device is reported, not timed
        if not impl.startswith("compiled-"):
            raise
        pytest.skip(f"torch.compile(mode={mode!r}) failed on {device}: {type(error).__name__}: {first_error_line(error)}")
    what = f"one update, MLP 2x{PROFILE.update_hidden}, batch {batch_size}"
    time_micro(benchmark, fn, iterations=1, what=what, first_call_s=first_call_s)
