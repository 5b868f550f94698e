"""Host-to-device staging: values arrive intact, whatever the row count, one name per array."""

from __future__ import annotations

import numpy as np
import torch

from fastdqn.device import HostToDevice


def test_host_to_device_copies_values_and_reuses_staging_for_fewer_rows(device: str) -> None:
    to_device = HostToDevice(torch.device(device))
    rng = np.random.default_rng(0)
    full = rng.standard_normal((16, 4)).astype(np.float32)
    first = to_device("obs", full)
    torch.testing.assert_close(first.cpu(), torch.from_numpy(full))
    kept = full[[0, 3, 5]] * 2
    second = to_device("row.obs", kept)
    fewer = to_device("obs", kept)  # a smaller step under the same name reuses its buffer
    assert first.device.type == second.device.type == torch.device(device).type
    torch.testing.assert_close(second.cpu(), torch.from_numpy(kept))
    torch.testing.assert_close(fewer.cpu(), torch.from_numpy(kept))
    if device != "cpu":
        assert to_device.staging["obs"].shape == (16, 4) and to_device.staging["obs"].is_pinned()


def test_host_to_device_is_zero_copy_on_cpu() -> None:
    array = np.arange(6, dtype=np.int64)
    assert to_tensor_shares_memory(HostToDevice(torch.device("cpu"))("action", array), array)


def to_tensor_shares_memory(tensor: torch.Tensor, array: np.ndarray) -> bool:
    return bool(tensor.data_ptr() == array.__array_interface__["data"][0])


def test_a_generator_state_from_another_device_type_leaves_the_generator_seeded() -> None:
    from fastdqn.device import restore_generator

    generator = torch.Generator().manual_seed(3)
    expected = torch.rand(4, generator=torch.Generator().manual_seed(3))
    assert not restore_generator(generator, torch.zeros(16, dtype=torch.uint8))  # a CUDA generator's 16-byte state
    assert torch.equal(torch.rand(4, generator=generator), expected)
    saved = generator.get_state()
    following = torch.rand(4, generator=generator)
    assert restore_generator(generator, saved) and torch.equal(torch.rand(4, generator=generator), following)
