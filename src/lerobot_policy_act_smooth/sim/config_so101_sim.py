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
# Triangles the simulated cameras draw the arm's visual meshes with (decimated copies; the full
# CAD meshes have about 400k): defined here, free of MuJoCo, for the robot and env configs.
DEFAULT_RENDER_MESH_FACES = 20000
# Fewer triangles than this over the arm's 17 visual parts no longer look like the arm.
MIN_RENDER_MESH_FACES = 1000


def check_render_mesh_faces(value, flag: str) -> None:
    """Raise ValueError naming ``flag`` unless ``value`` is 0 (full meshes) or a usable budget."""
    if isinstance(value, bool) or not isinstance(value, int) or (value != 0 and value < MIN_RENDER_MESH_FACES):
        raise ValueError(
            f"{flag} must be 0 (render the full meshes) or an integer of at least {MIN_RENDER_MESH_FACES} "
            f"(triangles of the arm's visual meshes, default {DEFAULT_RENDER_MESH_FACES}), got {value!r}."
        )


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
            low-dimensional profile). See docs/deployment.md "Cameras" for the CPU cost per frame.
        camera_height: height in pixels of every simulated camera.
        camera_width: width in pixels of every simulated camera.
        render_mesh_faces: the cameras draw the arm with its visual meshes decimated to about
            this many triangles in all (0: the full ~400k-triangle CAD meshes, several times
            slower on a CPU). Collision meshes and the physics are the same either way.
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
    render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES
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
        check_render_mesh_faces(self.render_mesh_faces, "--robot.render_mesh_faces")
        if self.idle_reset_s <= 0:
            raise ValueError(f"--robot.idle_reset_s must be positive, got {self.idle_reset_s}.")

    @property
    def camera_names(self) -> list[str]:
        return [name.strip() for name in self.sim_cameras.split(",") if name.strip()]
