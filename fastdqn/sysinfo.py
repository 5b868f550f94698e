"""What machine and software a run or a benchmark figure came from.

torch is imported only where a fact needs it (threads, CUDA devices): `fastdqn info` on a CPU-only
torch build reads the version and build from the installed files and stays well under a second,
where `import torch` alone takes about 2 s on a small CPU.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import platform
import sys
from importlib import metadata
from pathlib import Path


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


def torch_build() -> dict[str, str | None] | None:
    """`torch.version`'s `__version__`, `cuda` and `hip`, read from the installed file without importing torch.

    None where the file is missing or does not parse as expected; then only importing torch can tell.
    """
    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or spec.origin is None:
            return None
        tree = ast.parse((Path(spec.origin).parent / "version.py").read_text())
    except (OSError, SyntaxError, ValueError, ImportError):
        return None
    found: dict[str, str | None] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str)):
            found[target.id] = value.value
    if not isinstance(found.get("__version__"), str) or "cuda" not in found or "hip" not in found:
        return None
    return found


def needs_torch_for_devices() -> bool:
    """True unless the installed torch is a CPU-only build, whose only device is the CPU."""
    build = torch_build()
    return build is None or build["cuda"] is not None or build["hip"] is not None


def system_info(import_torch: bool = True) -> dict[str, str | int]:
    """Versions, CPU, threads and devices; `import_torch=False` leaves torch unimported (unless it already is).

    Without torch, the CUDA facts come from the build (a CPU-only build has no CUDA device) and the
    thread count is not read.
    """
    build = torch_build()
    if "torch" in sys.modules or import_torch or build is None:
        return _torch_info()
    info = _base_info(str(build["__version__"]))
    cuda = build["cuda"] or build["hip"]
    info["torch threads"] = "not read (`fastdqn info --torch` imports torch to read it)"
    info["cuda available"] = "False (CPU-only torch build)" if cuda is None else "not checked (torch not imported)"
    info["torch cuda build"] = cuda or "none (CPU build)"
    return info


def _base_info(torch_version: str) -> dict[str, str | int]:
    return {
        "fastdqn": _version("fastdqn"),
        "python": platform.python_version(),
        "torch": torch_version,
        "gymnasium": _version("gymnasium"),
        "numpy": _version("numpy"),
        "tensordict": _version("tensordict"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu cores": os.cpu_count() or 0,
    }


def _torch_info() -> dict[str, str | int]:
    import torch

    info = _base_info(torch.__version__)
    info["torch threads"] = torch.get_num_threads()
    info["cuda available"] = str(torch.cuda.is_available())
    info["torch cuda build"] = torch.version.cuda or "none (CPU build)"
    for index in range(torch.cuda.device_count()):
        info[f"cuda:{index}"] = torch.cuda.get_device_name(index)
    return info
