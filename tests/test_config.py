from __future__ import annotations

import json

import pytest

import fastdqn
from fastdqn.config import Config, ConfigError


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_envs": 0}, "num_envs=0 must be a positive integer"),
        ({"batch_size": 512, "buffer_capacity": 256}, "batch_size=512 exceeds buffer_capacity=256; raise --buffer-capacity"),
        ({"total_steps": 500, "learning_starts": 1000}, "raise --total-steps"),
        ({"gamma": 1.5}, "gamma=1.5"),
        ({"tau": 0.0}, "tau=0.0"),
        ({"loss": "l1"}, "loss='l1' is not one of huber, mse"),
        ({"device": "tpu"}, "device='tpu'"),
    ],
)
def test_config_rejects_bad_values_naming_field_and_fix(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Config(**changes)  # type: ignore[arg-type]


def test_config_json_round_trip(tmp_path: object) -> None:
    cfg = Config(seed=7, stop_at_return=None, hidden_dim=32)
    path = tmp_path / "config.json"  # type: ignore[operator]
    path.write_text(cfg.to_json())
    assert Config.load(path) == cfg
    assert json.loads(cfg.to_json())["hidden_dim"] == 32


def test_tutorial_preset_keeps_the_tutorials_hyperparameters() -> None:
    cfg = fastdqn.preset("tutorial")
    assert (cfg.gamma, cfg.learning_rate, cfg.batch_size, cfg.hidden_dim, cfg.buffer_capacity) == (0.95, 1e-4, 64, 256, 100_000)
    assert (cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_decay_steps, cfg.exploration) == (0.95, 0.01, 500, "exponential")
    assert (cfg.loss, cfg.grad_clip_value, cfg.num_envs, cfg.gradient_steps, cfg.seed) == ("mse", 1.0, 1, 1, 10)
    assert cfg.env_id == "CartPole-v1"


def test_replay_ratio_is_samples_per_env_step() -> None:
    assert Config(num_envs=16, gradient_steps=4, batch_size=64, train_every=1).replay_ratio == 16.0
    assert Config(num_envs=1, gradient_steps=1, batch_size=64, train_every=1).replay_ratio == 64.0


def test_unknown_preset_and_unknown_fields_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        fastdqn.preset("fast")
    with pytest.raises(ConfigError, match="unknown config fields"):
        Config.from_dict({"gama": 0.9})


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the choice on machines without CUDA")
def test_device_auto_picks_cpu_without_cuda() -> None:
    from fastdqn.device import resolve_device

    assert resolve_device("auto").type == "cpu"
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_option_values_read_booleans_written_as_text() -> None:
    """`--variant "double_dqn=false"` (bench/sweep.py) and other text values reach a bool field as a bool, a grid too."""
    from fastdqn.cli_config import option_values

    assert option_values("double_dqn", "false") == [False]
    assert option_values("double_dqn", "True,off") == [True, False]
    assert option_values("double_dqn", True) == [True]  # a flag's value passes as it is
    assert Config().replace(double_dqn=option_values("double_dqn", "no")[0]).double_dqn is False
    with pytest.raises(ConfigError, match=r"double_dqn='maybe' is not true or false; write double_dqn=true"):
        option_values("double_dqn", "maybe")
