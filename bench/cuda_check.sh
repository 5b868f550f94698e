#!/usr/bin/env bash
# The cuda checks in one go, for a machine with an NVIDIA GPU. From the repository root:
#
#     make install && bash bench/cuda_check.sh            # full bench (cpu rows too, for the cuda/cpu ratios)
#     bash bench/cuda_check.sh --quick                    # bench-quick instead
#
# 1. says which GPU torch sees, and stops if it sees none;
# 2. runs the CUDA tests: those marked `cuda` (tests/conftest.py marks the cuda row of every test
#    parametrized over `device`), then any test with `cuda` in its id that lacks the mark;
# 3. trains CartPole on the GPU through the CLI, with Gymnasium's env and with the native one (fused step);
# 4. runs the env-backend cases alone (collection at 65,536 CartPole envs, CUDA graph against eager), then
#    the bench: every case on cpu and cuda, so each cuda row gets its cuda/cpu ratio, and writes
#    bench/results/<host>-<date>.{json,md,png}. Paste the .md tables into docs/performance.md
#    with the device named (the .md's first line names CPU, threads and torch; add the GPU line below).
#    Its member rows include issue 17's GPU target: 256 CartPole members x 64 native envs against one
#    (`bench_group_members_wall[cuda]`, <= 2x).
# Extra arguments go to bench/run.py (e.g. `--quick`, `--threads 4`, `-k "cuda"`).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"

"$BIN/python" - <<'PY'
import sys

import torch

if not torch.cuda.is_available():
    sys.exit(f"no CUDA device visible to torch {torch.__version__} (CUDA build: {torch.version.cuda}); nothing to check")
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i}: {torch.cuda.get_device_name(i)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY

status=0
"$BIN/python" -m pytest tests -m cuda -q -o addopts= -rfEs || status=$?
"$BIN/python" -m pytest tests -m "not cuda" -k cuda -q -o addopts= -rfEs || { rc=$?; [ "$rc" -eq 5 ] || status=$rc; }  # 5: none selected
# the CLI end to end on the GPU, compiled update included (--compile auto compiles on CUDA)
"$BIN/fastdqn" train --num-envs 16 --device cuda --quiet --out "$(mktemp -d)" --run-name cuda-check || status=$?
# the step on the device: a native env, one-step rows, the whole vector step replayed as a CUDA graph
"$BIN/fastdqn" train --env-backend torch --n-step 1 --num-envs 1024 --device cuda --quiet --out "$(mktemp -d)" --run-name cuda-native || status=$?
# the env-backend rows first (a few minutes): env alone, collection eager / fused at up to 65,536 envs
"$BIN/python" bench/run.py --quick -k "bench_env_step or bench_collect_backend" --out bench/results/cuda-envs || status=$?
"$BIN/python" bench/run.py "$@" || status=$?
"$BIN/python" -c "import torch; print('bench device:', torch.cuda.get_device_name(0))"
exit "$status"
