"""Configuration of the simulated SO-101 robot, registered with LeRobot as robot type `so101_sim`.

Kept free of heavy imports: `lerobot_policy_act_smooth` imports this module when LeRobot's CLIs
import the plugin (`register_third_party_plugins`), and MuJoCo is only loaded when the robot
connects. LeRobot builds the robot from this config by its naming convention: class
`SO101SimConfig` -> robot class `SO101Sim` in the sibling module `so101_sim`.
"""

from __future__ import annotations

from dataclasses import dataclass

from lerobot.robots.config import RobotConfig

SIM_CAMERA_NAMES = ("top", "wrist")


@RobotConfig.register_subclass("so101_sim")
@dataclass(kw_only=True)
class SO101SimConfig(RobotConfig):
    """The project's MuJoCo SO-101 pick-and-place scene behind LeRobot's Robot interface.

    Args:
        seed: episode i places the cube and the target from SeedSequence([seed, i]).
        fps: control rate the physics is stepped at: one `send_action` holds the joint targets for
            1/fps s of simulated time. Give the rollout's `--fps` (the rollout loop keeps the
            wall-clock pace).
        sim_cameras: comma-separated simulated cameras ("top", "wrist"); empty for none (the
            low-dimensional profile). CPU rendering takes 70-150 ms per frame.
        camera_height: height in pixels of every simulated camera.
        camera_width: width in pixels of every simulated camera.
        idle_reset_s: a new episode (new cube and target, arm at the ready pose) starts at the
            first observation taken after no action was sent for this many wall-clock seconds,
            which is what `lerobot-rollout --strategy.type=episodic` does between episodes
            (keep `--dataset.reset_time_s` above it).
    """

    seed: int = 0
    fps: int = 30
    sim_cameras: str = ""  # not "cameras": RobotConfig reserves that name for camera configs
    camera_height: int = 96
    camera_width: int = 128
    idle_reset_s: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if self.seed < 0:
            raise ValueError(f"--robot.seed must be >= 0, got {self.seed}.")
        if not 5 <= self.fps <= 200:
            raise ValueError(f"--robot.fps must be between 5 and 200 (the rollout's --fps), got {self.fps}.")
        unknown = [name for name in self.camera_names if name not in SIM_CAMERA_NAMES]
        if unknown:
            raise ValueError(
                f"--robot.sim_cameras: unknown camera(s) {unknown}; choose from {', '.join(SIM_CAMERA_NAMES)}."
            )
        for side in ("camera_height", "camera_width"):
            if not 8 <= getattr(self, side) <= 2048:
                raise ValueError(f"--robot.{side} must be between 8 and 2048 pixels, got {getattr(self, side)}.")
        if self.idle_reset_s <= 0:
            raise ValueError(f"--robot.idle_reset_s must be positive, got {self.idle_reset_s}.")

    @property
    def camera_names(self) -> list[str]:
        return [name.strip() for name in self.sim_cameras.split(",") if name.strip()]
