"""Videos of greedy episodes: `fastdqn eval RUN --video DIR`, one mp4 per episode, via Gymnasium's RecordVideo.

RecordVideo wraps the bare env, under any preprocessing, so a video shows what a person would
see: CartPole's 600x400 render, and for ALE games every raw 210x160 colour frame at the console's
60 Hz, not the 84x84 grayscale stack the agent acts on. A video holds the frame after the reset
and one per env step (per emulator frame for ALE: four per agent step, plus the no-op starts).

ALE games take Gymnasium's preprocessing here (`AtariPreprocessing` + `FrameStackObservation`,
the `--vectorization-mode sync` path in atari.py, evaluation form: whole games, raw scores), since
ale-py's vector env renders no frames; its stack repeats the first frame at a reset where ale-py's
vector env zero-pads it, which changes only the first three steps' inputs.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from gymnasium.wrappers import RecordVideo

from fastdqn.agent import DQNAgent
from fastdqn.config import ConfigError
from fastdqn.envs import EnvError, check_spaces, find_spec

ATARI_FPS = 60  # one recorded frame per emulator frame


@dataclass(frozen=True)
class RecordedEpisode:
    path: Path
    episode_return: float
    steps: int
    """Agent steps (env steps), as in episodes.csv."""
    cut: bool
    """True when `max_steps` ended the episode before the env did."""


class RecordEveryFrame(RecordVideo):
    """Gymnasium's RecordVideo, with every captured frame in the file.

    moviepy 2.2's ImageSequenceClip sums 1/fps once per frame for its duration, and the writer takes
    int(duration * fps) frames, so whenever the float sum falls short the last frame is dropped (258
    CartPole frames at 50 fps came out as 257). Half a frame more duration writes all n.
    """

    def stop_recording(self) -> None:
        if self.recorded_frames:
            from moviepy.video.io.ImageSequenceClip import ImageSequenceClip

            clip = ImageSequenceClip(self.recorded_frames, fps=self.frames_per_sec)
            clip = clip.with_duration((len(self.recorded_frames) + 0.5) / self.frames_per_sec)
            clip.write_videofile(os.path.join(self.video_folder, f"{self._video_name}.mp4"), logger=None)
        self.recorded_frames = []
        self.recording = False
        self._video_name = None


def require_video() -> None:
    try:
        import moviepy  # noqa: F401
    except ImportError:
        raise ConfigError(
            '--video needs moviepy (its imageio-ffmpeg wheel ships ffmpeg); install it with: pip install -e ".[video]"'
        ) from None


def make_video_env(env_id: str, folder: Path, name_prefix: str, max_steps: int | None = None) -> gym.Env[Any, Any]:
    """One env that renders rgb frames, recorded under `folder`, preprocessed as the agent was trained."""
    require_video()
    from gymnasium.wrappers import TimeLimit

    from fastdqn.atari import FRAME_SKIP, FRAME_STACK, MAX_EPISODE_STEPS, NOOP_MAX

    atari = env_id.rpartition(":")[2].startswith("ALE/")  # as atari.py decides, for any ALE/ id
    if atari:
        try:
            import ale_py
        except ImportError:
            raise EnvError("ALE/... envs need ale-py and OpenCV: pip install 'fastdqn[atari]'") from None
        gym.register_envs(ale_py)
    # rgb_array frames need no display; without this pygame's SDL prints an error line about XDG_RUNTIME_DIR on headless machines
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    spec = find_spec(env_id)
    kwargs: dict[str, Any] = {"render_mode": "rgb_array"}
    if atari:
        kwargs.update(frameskip=1, max_num_frames_per_episode=MAX_EPISODE_STEPS * FRAME_SKIP)  # AtariPreprocessing skips
    try:
        env = gym.make(spec, **kwargs)
    except (gym.error.Error, ImportError, TypeError) as error:
        raise EnvError(f"env id {env_id!r} could not be made to render frames for a video: {error}") from None
    if env.render_mode != "rgb_array":
        env.close()
        raise EnvError(f"{env_id} does not render rgb_array frames, so it cannot be recorded")
    with warnings.catch_warnings():  # RecordVideo warns whenever the folder exists; same-named files are replaced, as asked
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
        env = RecordEveryFrame(env, str(folder), episode_trigger=lambda _: True, name_prefix=name_prefix, fps=ATARI_FPS if atari else None)
    if atari:
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

        env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=84, grayscale_obs=True)
        env = FrameStackObservation(env, FRAME_STACK)
    if max_steps is not None:
        env = TimeLimit(env, max_steps)
    return env


def record_episodes(
    agent: DQNAgent, env_id: str, folder: Path, episodes: int = 1, seed: int = 0, name_prefix: str = "fastdqn", max_steps: int | None = None
) -> list[RecordedEpisode]:
    """Greedy episodes of `agent`, episode i reset with `seed + i`, each written to `folder/<prefix>-episode-<i>.mp4`.

    Args:
        max_steps: cut each episode after this many agent steps (a long Atari game makes a long video).
    """
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"--video-max-steps {max_steps} must be at least 1")
    env = make_video_env(env_id, folder, name_prefix, max_steps)
    recorded: list[tuple[float, int, bool]] = []
    try:
        spaces = check_spaces(env_id, env.observation_space, env.action_space)
        if spaces != agent.spaces:
            raise EnvError(
                f"the agent was trained on observations {agent.spaces.obs_shape} {agent.spaces.obs_dtype} with {agent.n_actions} actions, "
                f"but {env_id} has {spaces.obs_shape} {spaces.obs_dtype} with {spaces.n_actions}; record it on the env it was trained on"
            )
        with torch.no_grad():
            for episode in range(episodes):  # one env: a video is one episode's frames in order
                obs, _ = env.reset(seed=seed + episode)
                episode_return, steps, terminated, truncated = 0.0, 0, False, False
                while not (terminated or truncated):
                    action = int(agent.act(torch.as_tensor(obs).unsqueeze(0), 0.0)[0])  # (1,) -> one greedy action
                    obs, reward, terminated, truncated, _ = env.step(action)
                    episode_return += float(reward)
                    steps += 1
                recorded.append((episode_return, steps, max_steps is not None and steps >= max_steps and not terminated))
    except gym.error.DependencyNotInstalled as error:  # classic control draws its frames with pygame
        raise EnvError(f'{env_id} cannot render frames: {error}; pip install -e ".[video]" brings pygame for classic control') from None
    finally:
        env.close()  # RecordVideo writes the last episode's file here
    return [
        RecordedEpisode(folder / f"{name_prefix}-episode-{i}.mp4", episode_return, steps, cut)
        for i, (episode_return, steps, cut) in enumerate(recorded)
    ]
