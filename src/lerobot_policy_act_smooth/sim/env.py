"""Gymnasium environment for closed-loop evaluation on the simulated SO-101 pick-and-place scene.

Observations use LeRobot's feature names and units (degrees), so a policy trained on a
dataset from ``actsmooth-dataset`` sees the same kind of inputs here; actions are the six
joint position targets in degrees, like the dataset's ``action``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lerobot_policy_act_smooth.sim.config_so101_sim import check_render_mesh_faces
from lerobot_policy_act_smooth.sim.scene import (
    CAMERA_NAMES,
    DEFAULT_CAMERA_SIZES,
    DEFAULT_RENDER_MESH_FACES,
    FEATURE_NAMES,
    TASK,
    PickPlaceScene,
    ServoSensor,
)

MAX_IMAGE_SIDE = 2048
MIN_IMAGE_SIDE = 8
ENV_STATE_DIM = 10


def resolve_cameras(cameras) -> dict[str, tuple[int, int]]:
    """Normalise a camera request to {name: (height, width)}.

    Accepts None, a name, a list of names (default sizes), or a dict name -> (height, width).
    Raises ValueError naming the problem for unknown names or absurd sizes.
    """
    if cameras is None:
        return {}
    if isinstance(cameras, str):
        cameras = [cameras]
    if not isinstance(cameras, dict):
        cameras = {name: DEFAULT_CAMERA_SIZES.get(name) for name in cameras}
    resolved = {}
    for name, size in cameras.items():
        if name not in CAMERA_NAMES:
            raise ValueError(f"unknown camera {name!r}: choose from {', '.join(CAMERA_NAMES)}")
        if size is None:
            size = DEFAULT_CAMERA_SIZES[name]
        try:
            height, width = (int(v) for v in size)
        except (TypeError, ValueError):
            raise ValueError(f"camera {name!r}: size must be (height, width), got {size!r}") from None
        for side in (height, width):
            if not MIN_IMAGE_SIDE <= side <= MAX_IMAGE_SIDE:
                raise ValueError(
                    f"camera {name!r}: size {height}x{width} is out of range; each side must be "
                    f"between {MIN_IMAGE_SIDE} and {MAX_IMAGE_SIDE} pixels"
                )
        resolved[name] = (height, width)
    return resolved


class SO101JointEnv(gym.Env):
    """SO-101 pick-and-place with joint position control in degrees at ``fps`` frames per second.

    Args:
        cameras: None, camera names (``"top"``, ``"wrist"``) or {name: (height, width)}.
        max_steps: episode length limit; ``truncated`` becomes true at this step.
        seed: seed of the first ``reset()`` when that call gives none.
        fps: control rate; one ``step`` holds the targets for 1/fps s of physics.
        sensor: noise and quantisation of the measured joint angles.
        render_mesh_faces: triangles the cameras draw the arm's visual meshes with (decimated
            copies; 0 = the full meshes). Physics and collision meshes do not depend on it.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        cameras=None,
        max_steps: int = 600,
        seed: int | None = None,
        fps: int = 30,
        sensor: ServoSensor | None = None,
        render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES,
    ):
        if max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        if not 1 <= fps <= 1000:
            raise ValueError(f"fps must be between 1 and 1000, got {fps}")
        check_render_mesh_faces(render_mesh_faces, "render_mesh_faces")
        self.cameras = resolve_cameras(cameras)
        self.max_steps = int(max_steps)
        self.fps = int(fps)
        self.task = TASK
        self.joint_names = list(FEATURE_NAMES)
        self.sensor = sensor or ServoSensor()
        self.render_mode = "rgb_array"
        self.metadata = {**self.metadata, "render_fps": self.fps}
        self.render_mesh_faces = render_mesh_faces
        self.scene = PickPlaceScene(fps=self.fps, camera_sizes=self.cameras, render_mesh_faces=render_mesh_faces)
        self._initial_seed = seed
        self._sensor_rng = np.random.default_rng(0)
        self.episode_seed: int | None = None
        self.steps = 0
        self.success = False

        low = self.scene.joint_low_deg.astype(np.float32)
        high = self.scene.joint_high_deg.astype(np.float32)
        self.action_space = spaces.Box(low=low, high=high, dtype=np.float32)
        obs_spaces = {
            "observation.state": spaces.Box(low - 5.0, high + 5.0, dtype=np.float32),
            "observation.environment_state": spaces.Box(-np.inf, np.inf, (ENV_STATE_DIM,), dtype=np.float32),
        }
        for name, (height, width) in self.cameras.items():
            obs_spaces[f"observation.images.{name}"] = spaces.Box(0, 255, (height, width, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)

    # --- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self._initial_seed is not None and self.episode_seed is None:
            seed = self._initial_seed
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self.episode_seed = int(seed)
        self.scene.reset(seed=self.episode_seed)
        # Sensor noise has its own stream, so observing never changes the physics.
        self._sensor_rng = np.random.default_rng([self.episode_seed, 7])
        self.steps = 0
        self.success = False
        return self._observation(), self._info()

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (6,):
            raise ValueError(f"action must have shape (6,) (joint targets in degrees), got {action.shape}")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action must be finite, got {action}")
        if self.episode_seed is None:
            raise RuntimeError("call reset() before step()")
        _, _, out_of_bounds_or_success, _, _ = self.scene.step(action)
        self.steps += 1
        placed = self.scene.is_success()
        self.success = self.success or placed
        terminated = bool(out_of_bounds_or_success or self.success)
        truncated = self.steps >= self.max_steps
        return self._observation(), float(placed), terminated, truncated, self._info()

    def render(self) -> np.ndarray:
        name = next(iter(self.cameras), None)
        if name is None:
            raise RuntimeError("render() needs a camera: construct SO101JointEnv(cameras={'top': (h, w)})")
        return self.scene.render_camera(name)

    def close(self) -> None:
        self.scene.close()

    # --- helpers --------------------------------------------------------------------------
    def measured_state(self) -> np.ndarray:
        """Measured follower joint angles (degrees, float32 [6]): true angles through the sensor model."""
        return self.sensor.measure(self.scene.joint_positions_deg(), self._sensor_rng).astype(np.float32)

    def _observation(self) -> dict[str, np.ndarray]:
        obs = {
            "observation.state": self.measured_state(),
            "observation.environment_state": self.scene.environment_state(),
        }
        for name in self.cameras:
            obs[f"observation.images.{name}"] = self.scene.render_camera(name)
        return obs

    def _info(self) -> dict[str, Any]:
        return {
            "is_success": bool(self.success),
            "episode_seed": self.episode_seed,
            "step": self.steps,
            "task": self.task,
        }
