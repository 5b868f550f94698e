"""What machine and software a run or a benchmark figure came from."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import torch


def process_age_seconds() -> float | None:
    """Seconds since this process started (interpreter start-up and imports included), Linux only."""
    try:
        with open("/proc/self/stat") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as uptime:
            uptime_seconds = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(uptime_seconds - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def system_info() -> dict[str, str | int]:
    info: dict[str, str | int] = {
        "fastdqn": _version("fastdqn"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": _version("gymnasium"),
        "numpy": _version("numpy"),
        "tensordict": _version("tensordict"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu cores": os.cpu_count() or 0,
        "torch threads": torch.get_num_threads(),
        "cuda available": str(torch.cuda.is_available()),
        "torch cuda build": torch.version.cuda or "none (CPU build)",
    }
    for index in range(torch.cuda.device_count()):
        info[f"cuda:{index}"] = torch.cuda.get_device_name(index)
    return info
