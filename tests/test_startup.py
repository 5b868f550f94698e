"""`fastdqn --help`, `fastdqn info` and `import fastdqn` leave the heavy libraries unimported.

Each check runs in a fresh interpreter (this test process has imported torch long ago) and reads
`sys.modules` at its exit. No timing is asserted: `bench/startup.py` measures the wall times.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fastdqn
from fastdqn.sysinfo import needs_torch_for_devices, system_info, torch_build

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "tensordict", "matplotlib", "gymnasium", "torch._dynamo", "ale_py")


def loaded_after(code: str) -> list[str]:
    """Which of HEAVY are in `sys.modules` once `code` has run (a `SystemExit` from typer included)."""
    script = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: sys.__stderr__.write('LOADED' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]) + '\\n'))\n"
        f"{code}\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.startswith("LOADED")]
    assert lines, f"no module report (exit {done.returncode}): {done.stderr[-2000:]}"
    loaded: list[str] = json.loads(lines[-1].removeprefix("LOADED"))
    return loaded


def cli(*argv: str) -> str:
    return f"import sys; sys.argv = ['fastdqn', *{list(argv)!r}]\nfrom fastdqn.cli import main\nmain()"


def test_import_fastdqn_cli_imports_no_heavy_library() -> None:
    assert loaded_after("import fastdqn.cli") == []


def test_import_fastdqn_and_its_config_import_no_heavy_library() -> None:
    assert loaded_after("import fastdqn\nfrom fastdqn import Config, preset\npreset('cartpole')") == []


@pytest.mark.parametrize(
    "argv", [("--help",), *((command, "--help") for command in ("train", "config", "eval", "plot", "compare", "info"))]
)
def test_cli_help_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    assert loaded_after(cli(*argv)) == []


@pytest.mark.skipif(needs_torch_for_devices(), reason="a CUDA/ROCm torch build: `info` imports torch for its devices")
def test_cli_info_on_a_cpu_torch_build_imports_no_heavy_library() -> None:
    assert loaded_after(cli("info")) == []


def test_cli_info_torch_imports_torch_and_nothing_else_heavy() -> None:
    assert loaded_after(cli("info", "--torch")) == ["torch"]


def test_torch_build_read_from_files_matches_the_imported_torch() -> None:
    build = torch_build()
    assert build is not None
    assert (build["__version__"], build["cuda"], build["hip"]) == (torch.__version__, torch.version.cuda, torch.version.hip)


def test_system_info_without_torch_has_the_same_keys_as_with_it() -> None:
    # torch is imported in this process, so both calls read it; the keys are what bench JSON relies on
    assert list(system_info(import_torch=False)) == list(system_info())


def test_lazy_package_resolves_every_public_name() -> None:
    for name in fastdqn.__all__:
        assert getattr(fastdqn, name) is not None
    assert "train" in dir(fastdqn)
    missing = "nope"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        getattr(fastdqn, missing)


def test_lazy_package_keeps_train_and_evaluate_functions_after_their_modules_load() -> None:
    code = (
        "from fastdqn.train import RunResult\nfrom fastdqn.evaluate import Evaluator\nimport fastdqn\n"
        "assert callable(fastdqn.train) and fastdqn.train.__module__ == 'fastdqn.train', fastdqn.train\n"
        "assert callable(fastdqn.evaluate) and fastdqn.evaluate.__module__ == 'fastdqn.evaluate', fastdqn.evaluate"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
