"""Device choice and the host-to-device hop at the env boundary."""

from __future__ import annotations

import numpy as np
import torch

from fastdqn.config import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; a cuda device that is not there is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name!r} is not a device name; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ConfigError(
                f"--device {name} was asked for but CUDA is not available (torch {torch.__version__}, {build}); use --device cpu or --device auto"
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(
                f"--device {name}: there is no CUDA device {device.index}; this machine has {count} (cuda:0..cuda:{count - 1})"
            )
    elif device.type != "cpu":
        raise ConfigError(f"device={name!r} is not supported; use cpu, cuda, cuda:N or auto")
    return device


def restore_generator(generator: torch.Generator, state: torch.Tensor) -> bool:
    """Put a saved generator state back; False (the generator keeps its seed) when it is another device type's.

    A CUDA generator's state is 16 bytes and a CPU one's 5,056, and neither loads into the other: an
    agent trained on a GPU still loads, evaluates and keeps training on a CPU machine, its random
    streams seeded afresh rather than continued.
    """
    try:
        generator.set_state(state)
    except RuntimeError:
        return False
    return True


def should_compile(choice: str, device: torch.device) -> bool:
    """`auto` compiles on CUDA only: on CPU the bench shows compile time outweighs the gain."""
    return choice == "on" or (choice == "auto" and device.type == "cuda")


class HostToDevice:
    """Copies numpy arrays from the env to `device`: zero-copy on CPU, pinned staging on CUDA.

    On CUDA each name has a pinned buffer reused every step (sized for the largest batch seen, so a
    step that keeps fewer rows reuses it), which makes the copy asynchronous. An event recorded after
    each copy is waited on before the buffer is written again, so a name's next copy never overwrites
    pinned memory that the last one has not read yet (in the training loop the step's `actions.cpu()`
    has synchronised already, and the wait costs nothing).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.staging: dict[str, torch.Tensor] = {}
        self.copied: dict[str, torch.cuda.Event] = {}

    def __call__(self, name: str, array: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(np.ascontiguousarray(array))  # (n, ...): a batch of env rows
        if self.device.type == "cpu":
            return host
        n = host.shape[0]
        staged = self.staging.get(name)
        if staged is None or staged.shape[1:] != host.shape[1:] or staged.dtype != host.dtype or staged.shape[0] < n:
            staged = self.staging[name] = torch.empty((max(n, 1), *host.shape[1:]), dtype=host.dtype).pin_memory()
        if name in self.copied:
            self.copied[name].synchronize()
        staged[:n].copy_(host)
        on_device = staged[:n].to(self.device, non_blocking=True)
        event = self.copied.setdefault(name, torch.cuda.Event())
        event.record(torch.cuda.current_stream(self.device))
        return on_device
