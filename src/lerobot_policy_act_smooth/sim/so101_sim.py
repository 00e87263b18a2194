"""The simulated SO-101 as a LeRobot `Robot` (robot type `so101_sim`), on the project's MuJoCo scene.

Observation (what `get_observation` returns, all floats in the scene's units):
    <joint>.pos     6 measured joint angles, degrees, the real SO-101 follower's names
                    (shoulder_pan.pos ... gripper.pos) and the servo/encoder model of docs/simulation.md;
    cube.x.pos ... target.z.pos
                    the 10 environment-state values of `observation.environment_state` in the
                    simulator's datasets (cube position and quaternion, target position);
    success.pos     1.0 once the episode's pick-and-place succeeded, else 0.0;
    <camera>        uint8 [H, W, 3] per configured camera.
LeRobot's rollout keeps only scalars named *.pos / *.vel and folds them, in this order, into one
`observation.state` [17]; act_smooth's preprocessor splits the joints and the environment state
back out (processor_act_smooth.SplitEnvironmentStateStep), so the recorded dataset keeps the
cube, the target and the success flag next to the joints.

Action: the 6 joint targets in degrees (`<joint>.pos`), clipped to the joint limits; each
`send_action` advances the physics by 1/fps s. Other keys (LeRobot's return-to-start sends every
*.pos key it observed) are ignored.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from lerobot.robots.robot import Robot

from .config_so101_sim import SO101SimConfig

logger = logging.getLogger(__name__)

SUCCESS_KEY = "success.pos"


def joint_keys() -> list[str]:
    from .scene import FEATURE_NAMES

    return list(FEATURE_NAMES)


def environment_keys() -> list[str]:
    from .scene import ENV_STATE_NAMES

    return [f"{name}.pos" for name in ENV_STATE_NAMES]


class SO101Sim(Robot):
    """Simulated SO-101 follower with the pick-and-place scene; see the module docstring."""

    config_class = SO101SimConfig
    name = "so101_sim"

    def __init__(self, config: SO101SimConfig):
        super().__init__(config)
        self.config = config
        self.cameras = {name: (config.camera_height, config.camera_width) for name in config.camera_names}
        self._env = None
        self.episode_index = -1
        self.episodes: list[dict] = []  # per episode: seed, steps, success
        self._last_action_time: float | None = None

    # --- features ---------------------------------------------------------------------------
    @property
    def observation_features(self) -> dict:
        features: dict = {key: float for key in joint_keys() + environment_keys() + [SUCCESS_KEY]}
        features.update({name: (h, w, 3) for name, (h, w) in self.cameras.items()})
        return features

    @property
    def action_features(self) -> dict:
        return {key: float for key in joint_keys()}

    # --- lifecycle --------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._env is not None

    def connect(self, calibrate: bool = True) -> None:
        if self._env is not None:
            raise RuntimeError(f"{self} is already connected.")
        from .env import SO101JointEnv

        self._env = SO101JointEnv(
            cameras=self.cameras or None,
            max_steps=10**9,
            fps=self.config.fps,
            render_mesh_faces=self.config.render_mesh_faces,
        )
        self._start_episode()
        logger.info("%s connected (seed %d, %d fps, cameras %s)", self, self.config.seed, self.config.fps, list(self.cameras))

    @property
    def is_calibrated(self) -> bool:
        return True

    def calibrate(self) -> None:
        """Nothing to calibrate: the simulated encoders read true angles (plus the sensor model)."""

    def configure(self) -> None:
        """Nothing to configure: the servo model is part of the scene."""

    def disconnect(self) -> None:
        if self._env is None:
            return
        self._env.close()
        self._env = None
        for record in self.episodes:
            logger.info("so101_sim episode %(episode)d (seed %(seed)d): %(steps)d steps, success=%(success)s", record)

    # --- I/O --------------------------------------------------------------------------------
    def get_observation(self) -> dict:
        env = self._require_env()
        idle = self._last_action_time is not None and time.perf_counter() - self._last_action_time >= self.config.idle_reset_s
        if idle:
            self._start_episode()
        obs = dict(zip(joint_keys(), env.measured_state().tolist(), strict=True))
        obs.update(zip(environment_keys(), env.scene.environment_state().tolist(), strict=True))
        obs[SUCCESS_KEY] = float(env.success)
        for name in self.cameras:
            obs[name] = env.scene.render_camera(name)
        return obs

    def send_action(self, action: dict) -> dict:
        env = self._require_env()
        keys = joint_keys()
        missing = [key for key in keys if key not in action]
        if missing:
            raise ValueError(f"so101_sim: action lacks {missing}; it needs the six joint targets {keys} in degrees.")
        target = np.asarray([float(action[key]) for key in keys], dtype=np.float32)
        target = np.clip(target, env.action_space.low, env.action_space.high)
        if not np.all(np.isfinite(target)):
            raise ValueError(f"so101_sim: joint targets must be finite, got {target}.")
        # The scene step, not env.step: env.step would also render every camera for an observation
        # nobody reads (get_observation renders the one the rollout records).
        env.scene.step(target)
        env.steps += 1
        env.success = env.success or env.scene.is_success()
        self.episodes[-1].update(steps=env.steps, success=bool(env.success))
        self._last_action_time = time.perf_counter()
        return dict(zip(keys, target.tolist(), strict=True))

    # --- helpers ----------------------------------------------------------------------------
    def _start_episode(self) -> None:
        self.episode_index += 1
        seed = int(np.random.SeedSequence([self.config.seed, self.episode_index]).generate_state(1)[0])
        self._env.reset(seed=seed)
        self._last_action_time = None
        self.episodes.append({"episode": self.episode_index, "seed": seed, "steps": 0, "success": False})

    def _require_env(self):
        if self._env is None:
            raise RuntimeError(f"{self} is not connected: call connect() first.")
        return self._env
