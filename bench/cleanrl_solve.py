"""Time to solve CartPole-v1 with CleanRL's `dqn.py` and its defaults, one process per seed.

    CLEANRL_PYTHON bench/cleanrl_solve.py --cleanrl CHECKOUT --seed S --out DIR [--eval-every-steps 1000]

CleanRL's single-file DQN pins Gymnasium 0.29, so it runs in a venv of its own (see `bench/peers.md`):
`CLEANRL_PYTHON` is that venv's interpreter and `CHECKOUT` a checkout of the CleanRL repository (its
`cleanrl/dqn.py` and `cleanrl_utils/`). This file imports neither fastdqn nor anything outside that
venv. The script runs unmodified with its defaults (`--seed S --no-cuda` only); the one thing added
is the solve check every benchmark peer gets: every `eval_every_steps` training env steps, a greedy
evaluation of its `q_network` on 20 CartPole-v1 envs reset with seed `S + 100000` (as fastdqn's
`Evaluator` does), one episode each. The first whose mean reaches 475 ends the process. The check
hooks `SyncVectorEnv.step`, the one call the script makes per env step, and reads `q_network` from
the script's globals. `DIR/metrics.csv` has fastdqn's columns (`env_steps`, `wall_s`,
`eval_return_mean`), so `bench.solve.first_solve` reads it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from peer_protocol import EVAL_EPISODES, EVAL_SEED_OFFSET, SolveLog, peer_parser  # bench/, first on sys.path


def main() -> int:
    start = time.perf_counter()
    parser = peer_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--cleanrl", type=Path, required=True, help="a checkout of the CleanRL repository")
    args = parser.parse_args()

    import gymnasium as gym
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    script = (args.cleanrl / "cleanrl" / "dqn.py").resolve()
    sys.path.insert(0, str(args.cleanrl.resolve()))  # cleanrl_utils.buffers
    args.out.mkdir(parents=True, exist_ok=True)
    os.chdir(args.out)  # its TensorBoard `runs/` folder goes here
    script_globals: dict[str, Any] = {"__name__": "__main__", "__file__": str(script)}
    eval_envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(EVAL_EPISODES)])
    original_step = gym.vector.SyncVectorEnv.step
    log = SolveLog(args.out, start)
    env_steps = 0

    @torch.no_grad()
    def greedy_mean() -> float:
        q_network = script_globals["q_network"]
        obs, _ = eval_envs.reset(seed=args.seed + EVAL_SEED_OFFSET)
        returns, running = np.zeros(EVAL_EPISODES), np.ones(EVAL_EPISODES, dtype=bool)
        while running.any():
            actions = q_network(torch.as_tensor(obs, dtype=torch.float32)).argmax(dim=1).numpy()
            obs, rewards, terminated, truncated, _ = original_step(eval_envs, actions)
            returns += np.where(running, rewards, 0.0)
            running &= ~(terminated | truncated)
        return float(returns.mean())

    def step(self: Any, actions: Any) -> Any:
        nonlocal env_steps
        result = original_step(self, actions)
        env_steps += self.num_envs
        if env_steps % args.eval_every_steps == 0 and log.evaluated(env_steps, greedy_mean()):
            log.close()
            os._exit(0)  # solved: the script's own loop has no way to stop early
        return result

    gym.vector.SyncVectorEnv.step = step  # type: ignore[method-assign]
    sys.argv = [str(script), "--seed", str(args.seed), "--no-cuda"]
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # its per-episode prints
        exec(compile(script.read_text(), str(script), "exec"), script_globals)
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
