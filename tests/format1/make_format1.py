"""Write tests/format1/: a run and a group interrupted at env step 200, by fastdqn before checkpoint format 2.

Run with that version on the path (its checkpoints are what the test reads), e.g.
    git archive ab33be0 | tar -x -C /tmp/old && PYTHONPATH=/tmp/old python tests/format1/make_format1.py OUT
then copy OUT/run and OUT/group here.
"""

import shutil
import sys
from pathlib import Path
from typing import Any

import fastdqn
from fastdqn.config import Config
from fastdqn.engine import TrainingInterrupted
from fastdqn.group import train_many


def config(out: Path, **values: Any) -> Config:
    base: dict[str, Any] = {
        "env_id": "CartPole-v1",
        "env_backend": "torch",
        "device": "cpu",
        "torch_threads": 1,
        "num_envs": 4,
        "total_steps": 400,
        "learning_starts": 80,
        "buffer_capacity": 1000,
        "batch_size": 16,
        "hidden_dim": 16,
        "n_step": 3,
        "per": True,
        "target_update_every": 16,
        "epsilon_decay_steps": 300,
        "log_every_steps": 100,
        "eval_every_steps": 100,
        "eval_episodes": 2,
        "checkpoint_every_steps": 100,
        "checkpoint_keep": 1,
        "stop_at_return": None,
        "save_plot": False,
        "out_dir": str(out),
    }
    return Config(**{**base, **values})


if __name__ == "__main__":
    out = Path(sys.argv[1])
    shutil.rmtree(out, ignore_errors=True)
    try:
        fastdqn.train(config(out, run_name="run", seed=3), interrupt_at_step=200)
    except TrainingInterrupted as stopped:
        print(stopped)
    try:
        train_many([config(out, run_name="group", seed=s) for s in (3, 4)], interrupt_at_step=200)
    except TrainingInterrupted as stopped:
        print(stopped)
