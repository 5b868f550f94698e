"""Time to solve CartPole-v1 with Tianshou's CartPole DQN example, one process per seed.

    TIANSHOU_PYTHON bench/tianshou_solve.py --seed S --out DIR [--eval-every-steps 1000]

`TIANSHOU_PYTHON` is the interpreter of a venv with `tianshou` 2.x (see `bench/peers.md`); this file
imports nothing of fastdqn. It trains with the settings of Tianshou's `examples/discrete/discrete_dqn.py`
(below: 10 training envs, an MLP 128x128x128, Adam 1e-3, gamma 0.9, 3-step returns, a target sync
every 320 updates, a 20,000-row buffer, epsilon 0.1, one update per 10 env steps, batch 64, a budget
of 100,000 env steps) with the solve check every benchmark peer gets: every `eval_every_steps` env
steps (Tianshou's epoch, 10,000 in the example), a greedy test of 20 episodes on envs seeded
`S + 100000`; the first whose mean reaches 475 stops training (Tianshou's `stop_fn`). Where the example
differs: it tests 100 episodes with epsilon 0.05 after each 10,000-step epoch, and also tests early
when training episodes pass (`test_in_training`), which is off here so that every run is checked on
the same schedule. `DIR/metrics.csv` has fastdqn's columns for `bench.solve.first_solve`.
"""

from __future__ import annotations

import sys
import time

from peer_protocol import EVAL_EPISODES, EVAL_SEED_OFFSET, SolveLog, peer_parser  # bench/, first on sys.path

EXAMPLE = {
    "lr": 1e-3,
    "batch_size": 64,
    "training_envs": 10,
    "gamma": 0.9,
    "n_step": 3,
    "target_freq": 320,
    "buffer_size": 20_000,
    "eps_train": 0.1,
    "collect_env_steps": 10,
    "hidden_sizes": [128, 128, 128],
    "budget": 100_000,
}
"""Tianshou 2.0.1 `examples/discrete/discrete_dqn.py` (its 10 epochs x 10,000 steps as the budget)."""


def main() -> int:
    start = time.perf_counter()
    args = peer_parser(__doc__.split("\n\n")[0]).parse_args()

    import gymnasium as gym
    import numpy as np
    import tianshou as ts
    import torch
    from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory
    from tianshou.data import CollectStats
    from tianshou.trainer import OffPolicyTrainerParams
    from tianshou.utils.net.common import Net

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    ex = EXAMPLE
    training_envs = ts.env.DummyVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(ex["training_envs"])])
    test_envs = ts.env.DummyVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(EVAL_EPISODES)])
    training_envs.seed(args.seed)
    test_envs.seed(args.seed + EVAL_SEED_OFFSET)
    env = gym.make("CartPole-v1")
    assert isinstance(env.action_space, gym.spaces.Discrete)
    net = Net(state_shape=env.observation_space.shape, action_shape=int(env.action_space.n), hidden_sizes=ex["hidden_sizes"])
    policy = DiscreteQLearningPolicy(model=net, action_space=env.action_space, eps_training=ex["eps_train"], eps_inference=0.0)
    algorithm = ts.algorithm.DQN(
        policy=policy,
        optim=AdamOptimizerFactory(lr=ex["lr"]),
        gamma=ex["gamma"],
        n_step_return_horizon=ex["n_step"],
        target_update_freq=ex["target_freq"],
    )
    buffer = ts.data.VectorReplayBuffer(ex["buffer_size"], ex["training_envs"])
    training_collector = ts.data.Collector[CollectStats](algorithm, training_envs, buffer, exploration_noise=True)
    test_collector = ts.data.Collector[CollectStats](algorithm, test_envs, exploration_noise=False)  # greedy

    log = SolveLog(args.out, start)
    tested_at = [0]

    def test_fn(epoch: int, env_step: int | None) -> None:
        test_envs.seed(args.seed + EVAL_SEED_OFFSET)  # every test faces the same starts, as fastdqn's
        tested_at[0] = env_step or 0

    try:
        algorithm.run_training(
            OffPolicyTrainerParams(
                training_collector=training_collector,
                test_collector=test_collector,
                max_epochs=ex["budget"] // args.eval_every_steps,
                epoch_num_steps=args.eval_every_steps,
                collection_step_num_env_steps=ex["collect_env_steps"],
                test_step_num_episodes=EVAL_EPISODES,
                batch_size=ex["batch_size"],
                update_step_num_gradient_steps_per_sample=1 / ex["collect_env_steps"],
                test_fn=test_fn,
                stop_fn=lambda mean_return: log.evaluated(tested_at[0], mean_return),
                test_in_training=False,
            )
        )
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
