"""The simulated pick-and-place task as a LeRobot environment: `lerobot-eval --env.type=so101_sim`.

    lerobot-eval --policy.path=CKPT --env.type=so101_sim --eval.n_episodes=10 --eval.batch_size=1

`lerobot-eval` speaks gym: it builds `gym.make(<package_name>/<task>)` and renames the gym
observation keys `agent_pos` -> observation.state, `environment_state` ->
observation.environment_state and `pixels/<name>` -> observation.images.<name>. `SO101EvalEnv`
presents `sim.env.SO101JointEnv` (same scene, servo model, success test and seeds as
`actsmooth-sim-eval`) under those keys. Light to import: the gym id is registered by name and
MuJoCo loads when the first environment is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
from gymnasium import spaces

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.envs.configs import EnvConfig
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

from .config_so101_sim import DEFAULT_RENDER_MESH_FACES, SIM_CAMERA_NAMES, check_render_mesh_faces

GYM_NAMESPACE = "actsmooth"
GYM_TASK = "SO101PickPlaceJoint-v0"
TASK_TEXT = "Pick up the cube and place it on the target."  # sim.scene.TASK, without importing MuJoCo


@EnvConfig.register_subclass("so101_sim")
@dataclass
class SO101SimEnv(EnvConfig):
    """The project's simulated SO-101 pick-and-place, joint position control in degrees.

    Args:
        task: gym task name (one task).
        fps: control rate; one step holds the joint targets for 1/fps s.
        episode_length: steps before an episode is cut (truncated).
        cameras: comma-separated simulated cameras ("top", "wrist"); empty for the low-dimensional
            task. See docs/deployment.md "Cameras" for the CPU cost per frame.
        camera_height: height in pixels of every camera.
        camera_width: width in pixels of every camera.
        render_mesh_faces: the cameras draw the arm with its visual meshes decimated to about
            this many triangles in all (0: the full ~400k-triangle CAD meshes, several times
            slower on a CPU). Collision meshes and the physics are the same either way.
    """

    task: str | None = GYM_TASK
    fps: int = 30
    episode_length: int = 600
    cameras: str = ""
    camera_height: int = 96
    camera_width: int = 128
    render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES
    features: dict[str, PolicyFeature] = field(
        default_factory=lambda: {
            ACTION: PolicyFeature(type=FeatureType.ACTION, shape=(6,)),
            "agent_pos": PolicyFeature(type=FeatureType.STATE, shape=(6,)),
            "environment_state": PolicyFeature(type=FeatureType.ENV, shape=(10,)),
        }
    )
    features_map: dict[str, str] = field(
        default_factory=lambda: {ACTION: ACTION, "agent_pos": OBS_STATE, "environment_state": OBS_ENV_STATE}
    )

    def __post_init__(self):
        if self.episode_length < 1:
            raise ValueError(f"--env.episode_length must be >= 1, got {self.episode_length}.")
        if not 5 <= self.fps <= 200:
            raise ValueError(f"--env.fps must be between 5 and 200, got {self.fps}.")
        unknown = [name for name in self.camera_names if name not in SIM_CAMERA_NAMES]
        if unknown:
            raise ValueError(f"--env.cameras: unknown camera(s) {unknown}; choose from {', '.join(SIM_CAMERA_NAMES)}.")
        check_render_mesh_faces(self.render_mesh_faces, "--env.render_mesh_faces")
        for name in self.camera_names:
            key = f"pixels/{name}"
            self.features[key] = PolicyFeature(type=FeatureType.VISUAL, shape=(self.camera_height, self.camera_width, 3))
            self.features_map[key] = f"{OBS_IMAGES}.{name}"

    @property
    def camera_names(self) -> list[str]:
        return [name.strip() for name in self.cameras.split(",") if name.strip()]

    @property
    def package_name(self) -> str:
        return GYM_NAMESPACE  # the gym namespace registered below (not an importable package)

    @property
    def gym_kwargs(self) -> dict:
        cameras = {name: (self.camera_height, self.camera_width) for name in self.camera_names}
        # max_episode_steps is gym.make's own (its TimeLimit wrapper is what lerobot-eval asks for
        # _max_episode_steps); episode_steps reaches the environment.
        return {
            "cameras": cameras or None,
            "fps": self.fps,
            "episode_steps": self.episode_length,
            "max_episode_steps": self.episode_length,
            "render_mesh_faces": self.render_mesh_faces,
        }


class SO101EvalEnv(gym.Env):
    """SO101JointEnv with the observation keys lerobot-eval expects (agent_pos, environment_state, pixels)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        cameras=None,
        fps: int = 30,
        episode_steps: int = 600,
        render_mode: str = "rgb_array",
        render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES,
    ):
        from .env import SO101JointEnv

        self.inner = SO101JointEnv(
            cameras=cameras, max_steps=episode_steps, fps=fps, render_mesh_faces=render_mesh_faces
        )
        self.task = TASK_TEXT
        self.task_description = TASK_TEXT
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": fps}
        self.action_space = self.inner.action_space
        inner = self.inner.observation_space.spaces
        obs = {"agent_pos": inner["observation.state"], "environment_state": inner["observation.environment_state"]}
        if self.inner.cameras:
            obs["pixels"] = spaces.Dict({name: inner[f"observation.images.{name}"] for name in self.inner.cameras})
        self.observation_space = spaces.Dict(obs)

    def _convert(self, obs: dict) -> dict:
        out = {"agent_pos": obs["observation.state"], "environment_state": obs["observation.environment_state"]}
        if self.inner.cameras:
            out["pixels"] = {name: obs[f"observation.images.{name}"] for name in self.inner.cameras}
        return out

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.inner.reset(seed=seed, options=options)
        return self._convert(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.inner.step(action)
        return self._convert(obs), reward, terminated, truncated, info

    def render(self):
        if not self.inner.cameras:
            raise RuntimeError(
                "env so101_sim has no camera to render lerobot-eval's videos: pass --eval.recording=true "
                "(record a dataset instead of videos) or --env.cameras=top (see docs/deployment.md, Cameras)"
            )
        return self.inner.render()

    def close(self) -> None:
        self.inner.close()


if f"{GYM_NAMESPACE}/{GYM_TASK}" not in gym.registry:
    gym.register(id=f"{GYM_NAMESPACE}/{GYM_TASK}", entry_point=f"{__name__}:SO101EvalEnv")
