#!/usr/bin/env bash
# The preset sweeps behind fastdqn/presets/*.toml, as they were run (docs/presets.md has the results).
# Each line is one process: the seeds x variants train as groups, every run to its budget, and
# bench/results/sweep-<date>.md/.json get the best.pt and final.pt IQM, the solved and fall-back
# counts and the wall per seed. Hours on a 2-core CPU: run one line at a time, e.g.
#   bash bench/tune.sh lunarlander
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
sweep() { nice -n 10 "$PY" bench/sweep.py "$@"; }

case "${1:-all}" in
cartpole | all)
  # sweep-20261203-215448: zoo lr 2.3e-3 kept 5/10 final policies solved, 1e-3 3/5, 5e-4 4/5 (shipped)
  sweep --preset cartpole --seeds 1-5 --option learning_rate=1e-3,5e-4
  ;;&
lunarlander | all)
  # sweep-20261204-005544: Polyak targets and lr 5e-4 against the shipped lr 1e-3 with a hard copy every 64 updates
  sweep --preset lunarlander --seeds 1-5 --variant learning_rate=5e-4 --variant "tau=0.01 target_update_every=1" \
    --variant "tau=0.01 target_update_every=1 learning_rate=5e-4"
  # sweep-20261204-021258: a ring that holds the whole run, on the suite's seeds
  sweep --preset lunarlander --seeds 1-10 --option buffer_capacity=100000
  # sweep-20261204-022557: 3-step returns, on the suite's seeds
  sweep --preset lunarlander --seeds 1-10 --option n_step=3
  # sweep-20261204-051159: Adam 1e-3 decayed linearly to 0 (final 48.0, 1/10: most runs stuck hovering near 0)
  # or to 1e-4 (final 164.5, 5/10, 2 of 7 fell back, against 169.1, 3/10, 6 of 9), one group of 20 on a loaded CPU
  sweep --preset lunarlander --seeds 1-10 --variant learning_rate_end=0 --variant learning_rate_end=1e-4
  # sweep-20261204-055053: a faster start, Adam 2e-3 decayed to 1e-4: final 145.3, 2/10, 3 of 5 fell back, best 188.1
  # (no run hovered, but fewer reached 200 and more fell back than at 1e-3 -> 1e-4), 64.9 s/seed
  sweep --preset lunarlander --seeds 1-10 --variant "learning_rate=2e-3 learning_rate_end=1e-4"
  ;;&
mountaincar | all)
  # sweep-20261203-222238: the zoo's settings as SB3 runs them (one env, 8 updates every 16 steps), shipped
  sweep --preset mountaincar --seeds 1-3
  # the same against a lower lr and Polyak targets
  sweep --preset mountaincar --seeds 1-3 --variant learning_rate=2e-3 --variant "tau=0.01 target_update_every=1" \
    --variant "tau=0.01 target_update_every=1 learning_rate=2e-3"
  # sweep-20261204-052110: 2x128 and Adam 4e-3 decayed linearly to 4e-4: final -121.4, 5/10, 2 of 7 fell back,
  # best -109.0, 43.6 s/seed (shipped: -134.2, 4/10, 4 of 8, best -103.0, 105.0 s); seeds 2, 3, 9 never reached the flag
  sweep --preset mountaincar --seeds 1-10 --variant "hidden_dim=128 learning_rate_end=4e-4"
  # sweep-20261204-053806: the same decay at the shipped 2x256: final -116.2, 4/10, 3 of 7 fell back, best -104.3, 97.1 s/seed
  sweep --preset mountaincar --seeds 1-10 --variant learning_rate_end=4e-4
  # sweep-20261204-060721: 2x128 decayed to 0 (final -141.5, 2/10, best -124.1) or to 4e-4 with epsilon decayed over
  # 36k instead of 24k (final -168.2, 0/10, best -143.2): both learn later; 41.5 and 54.9 s/seed
  sweep --preset mountaincar --seeds 1-10 --variant "hidden_dim=128 learning_rate_end=0" \
    --variant "hidden_dim=128 learning_rate_end=4e-4 epsilon_decay_steps=36000"
  ;;&
acrobot | all)
  # the shipped preset over seeds 1-10 (suite-20261203-211405 ran it through bench/suite.py)
  sweep --preset acrobot --seeds 1-10
  ;;
esac
