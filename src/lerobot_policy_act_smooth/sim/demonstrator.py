"""A scripted pick-and-place demonstrator that moves like a person teleoperating a leader arm.

The plan is a sequence of waypoints from the package's top-down inverse kinematics
(approach, descend, grasp, lift, carry, place, release, retreat, return to rest). The
leader is moved between them along minimum-jerk profiles (the classic model of human
point-to-point reaching), with a random per-episode pace, short pauses, physiological
tremor and slow drift of the hand, an occasional aiming error corrected by a small
sub-movement, and the leader's own encoder quantisation. Each waypoint is planned when
its segment starts, from the scene as it is then (the operator watches the follower):
the carry target accounts for where the cube sits in the jaws, and every arm target is
raised by the servos' expected gravity sag.

The output of ``act`` is the leader command in degrees, which is what LeRobot records as
``action``; the follower (the simulated arm) lags it through its actuator dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot_policy_act_smooth.sim.scene import PickPlaceScene

# Grasp point height above the cube centre when the jaws close (the package's value: the
# pads pinch the upper part of the cube).
_GRASP_HEIGHT = 0.015
_LEADER_RESOLUTION_DEG = 360.0 / 4096
_FIXED_JAW_CLEARANCE = 0.007  # m


@dataclass
class HumanStyle:
    """Ranges that per-episode style parameters are drawn from (uniformly)."""

    pace: tuple[float, float] = (1.2, 1.7)  # multiplies every movement duration
    hover_height: tuple[float, float] = (0.05, 0.08)  # m above the grasp height
    lift_height: tuple[float, float] = (0.05, 0.08)
    open_deg: tuple[float, float] = (45.0, 60.0)  # jaw opening before the grasp
    release_deg: tuple[float, float] = (50.0, 60.0)  # must exceed 45 deg for the success test
    close_deg: tuple[float, float] = (-3.0, 5.0)  # below contact, so the jaws squeeze
    pause_s: tuple[float, float] = (0.1, 0.35)
    first_pause_s: tuple[float, float] = (0.3, 0.7)
    correction_probability: float = 0.3
    aim_error_m: tuple[float, float] = (0.008, 0.016)  # before a corrective sub-movement
    tremor_deg: tuple[float, float] = (0.07, 0.12)  # std of the 6-11 Hz tremor
    tremor_hz: tuple[float, float] = (6.0, 11.0)
    drift_deg: tuple[float, float] = (0.2, 0.5)  # std of the slow (< 1 Hz) wander
    # Per joint multiplier of tremor and drift: the wrist and the gripper trigger shake most.
    joint_tremor_scale: tuple[float, ...] = (0.8, 0.8, 0.9, 1.15, 1.1, 1.0)


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile s(tau) for tau in [0, 1] (s(0)=0, s(1)=1, zero vel/acc at ends)."""
    tau = np.clip(tau, 0.0, 1.0)
    return tau**3 * (10.0 - 15.0 * tau + 6.0 * tau**2)


class _Resonator:
    """AR(2) band-pass noise at ``freq_hz`` with stationary standard deviation ~``std``."""

    def __init__(
        self, freq_hz: np.ndarray, std: np.ndarray, fps: int, rng: np.random.Generator, r: float = 0.85
    ):
        omega = 2 * np.pi * np.asarray(freq_hz) / fps
        self.a1 = 2 * r * np.cos(omega)
        self.a2 = -(r**2)
        # Stationary variance of an AR(2) driven by unit noise, to scale the drive.
        var = (1 - self.a2) / ((1 + self.a2) * ((1 - self.a2) ** 2 - self.a1**2))
        self.gain = np.asarray(std) / np.sqrt(var)
        self.rng = rng
        self.y1 = np.zeros_like(self.gain)
        self.y2 = np.zeros_like(self.gain)
        for _ in range(60):  # start in the stationary regime
            self.step()

    def step(self) -> np.ndarray:
        y = self.a1 * self.y1 + self.a2 * self.y2 + self.gain * self.rng.standard_normal(self.gain.shape)
        self.y2, self.y1 = self.y1, y
        return y


class _Drift:
    """First-order low-pass noise (slow wander of the hand), std ~``std``, time constant ``tau_s``."""

    def __init__(self, std: np.ndarray, fps: int, rng: np.random.Generator, tau_s: float = 0.6):
        self.alpha = np.exp(-1.0 / (tau_s * fps))
        self.gain = np.asarray(std) * np.sqrt(1 - self.alpha**2)
        self.rng = rng
        self.y = np.asarray(std) * rng.standard_normal(np.shape(std))

    def step(self) -> np.ndarray:
        self.y = self.alpha * self.y + self.gain * self.rng.standard_normal(self.y.shape)
        return self.y


@dataclass
class _Segment:
    start: np.ndarray  # [6] degrees (noise-free plan)
    end: np.ndarray
    frames: int


class HumanLikeDemonstrator:
    """Produces one leader command (degrees, [6]) per control frame for a pick-and-place episode.

    Use: ``reset(scene, rng)`` after ``scene.reset``, then ``act(scene)`` once per frame
    until ``done``.
    """

    def __init__(self, style: HumanStyle | None = None, fps: int = 30):
        self.style = style or HumanStyle()
        self.fps = fps

    # --- episode set-up -------------------------------------------------------------------
    def reset(self, scene: PickPlaceScene, rng: np.random.Generator) -> None:
        s = self.style
        self.rng = rng
        u = lambda bounds: float(rng.uniform(*bounds))  # noqa: E731
        self.pace = u(s.pace)
        self.hover = u(s.hover_height)
        self.lift = u(s.lift_height)
        self.open_deg = u(s.open_deg)
        self.release_deg = u(s.release_deg)
        self.close_deg = u(s.close_deg)
        self.table_z = float(scene.cube_pose()[2])
        self.goal = scene.goal_pos
        scale = np.asarray(s.joint_tremor_scale)
        self.tremor = _Resonator(rng.uniform(*s.tremor_hz, size=6), u(s.tremor_deg) * scale, self.fps, rng)
        self.drift = _Drift(u(s.drift_deg) * scale, self.fps, rng)
        start = scene.leader_deg()
        self.rest_deg = start.copy()
        self.plan = start.copy()  # noise-free leader position
        self.segment: _Segment | None = None
        self.segment_frame = 0
        self.phases = self._phase_list()
        self.done = False
        self.frame = 0

    def _phase_list(self) -> list[tuple[str, dict]]:
        s, rng = self.style, self.rng
        pause = lambda: ("pause", {"seconds": float(rng.uniform(*s.pause_s))})  # noqa: E731
        phases: list[tuple[str, dict]] = [("pause", {"seconds": float(rng.uniform(*s.first_pause_s))})]
        if rng.uniform() < s.correction_probability:
            phases += [("approach", {"aim_error": True}), pause(), ("approach", {"aim_error": False})]
        else:
            phases += [("approach", {"aim_error": False})]
        phases += [("descend", {}), pause(), ("close", {}), pause(), ("lift", {})]
        if rng.uniform() < s.correction_probability:
            phases += [("carry", {"aim_error": True}), pause(), ("carry", {"aim_error": False})]
        else:
            phases += [("carry", {"aim_error": False})]
        phases += [("lower", {}), pause(), ("release", {}), pause(), ("retreat", {}), ("rest", {}), pause()]
        return phases

    # --- per frame ------------------------------------------------------------------------
    def act(self, scene: PickPlaceScene) -> np.ndarray:
        """The leader command for this frame, degrees [6] (quantised like an encoder reading)."""
        while self.segment is None or self.segment_frame >= self.segment.frames:
            if not self.phases:
                self.done = True
                self.segment = _Segment(self.plan.copy(), self.plan.copy(), 1)
                self.segment_frame = 0
                break
            name, kwargs = self.phases.pop(0)
            self.segment = self._start_phase(scene, name, **kwargs)
            self.segment_frame = 0
        seg = self.segment
        self.segment_frame += 1
        s = min_jerk(np.asarray(self.segment_frame / seg.frames))
        self.plan = seg.start + (seg.end - seg.start) * s
        self.frame += 1
        command = self.plan + self.tremor.step() + self.drift.step()
        command = np.clip(command, scene.joint_low_deg, scene.joint_high_deg)
        return np.round(command / _LEADER_RESOLUTION_DEG) * _LEADER_RESOLUTION_DEG

    # --- planning -------------------------------------------------------------------------
    def _frames(self, seconds: float) -> int:
        return max(1, int(round(seconds * self.fps)))

    def _move_seconds(self, distance_m: float, joint_delta_deg: float) -> float:
        """Human movement time: grows with reach distance and joint rotation (Fitts-like)."""
        return self.pace * (0.45 + 2.2 * distance_m + 0.006 * joint_delta_deg)

    def _arm_target(
        self,
        scene: PickPlaceScene,
        position: np.ndarray,
        lowest_z: float | None = None,
        align_jaws: bool = True,
    ) -> np.ndarray:
        """Leader arm angles [5] that put the follower's grasp point at ``position``.

        With ``lowest_z``, a position the wrist cannot reach (with the jaws vertical when
        ``align_jaws``) is lowered, down to ``lowest_z``, until it can: high above the far
        side of the table the wrist runs out of travel.
        """
        position = np.asarray(position, dtype=np.float64).copy()
        while True:
            arm = scene.solve_top_down_ik(position, seed_arm_deg=self.plan[:5], align_jaws=align_jaws)
            error_m, tilt_deg = scene.top_down_error(arm, position)
            reached = error_m < 0.003 and (tilt_deg < 3.0 or not align_jaws)
            if lowest_z is None or reached or position[2] <= lowest_z:
                break
            position[2] = max(lowest_z, position[2] - 0.01)
        return arm + scene.gravity_offset_deg(arm)

    def _aim(self, target: np.ndarray, aim_error: bool) -> np.ndarray:
        if not aim_error:
            return target
        angle = self.rng.uniform(0, 2 * np.pi)
        radius = self.rng.uniform(*self.style.aim_error_m)
        return target + radius * np.asarray([np.cos(angle), np.sin(angle), 0.0])

    def _start_phase(self, scene: PickPlaceScene, name: str, **kwargs) -> _Segment:
        start = self.plan.copy()
        end = start.copy()
        grasp = scene.grasp_point()
        cube = scene.cube_pose()[:3]
        if name == "pause":
            return _Segment(start, end, self._frames(kwargs["seconds"]))
        if name in ("close", "release"):
            end[5] = self.close_deg if name == "close" else self.release_deg
            seconds = self.rng.uniform(0.7, 1.1)
            return _Segment(start, end, self._frames(seconds))
        if name == "approach":
            target = np.asarray([cube[0], cube[1], self.table_z + _GRASP_HEIGHT + self.hover])
            target = self._aim(target, kwargs["aim_error"])
            end[5] = self.open_deg
        elif name == "descend":
            # The package's grasp point puts the fixed jaw's pad flush with the cube's face;
            # aim a little toward the moving jaw so that the fixed pad clears the cube.
            jaw = scene.jaw_direction_at(self.plan[:5])
            jaw[2] = 0.0
            target = np.asarray([cube[0], cube[1], self.table_z + _GRASP_HEIGHT]) - _FIXED_JAW_CLEARANCE * jaw
        elif name == "lift":
            target = grasp + np.asarray([0.0, 0.0, self.lift])
        elif name == "carry":
            # Steer the cube, not the jaws, to the goal: the cube may sit off-centre in the grip.
            offset = cube[:2] - grasp[:2]
            target = np.asarray([*(self.goal[:2] - offset), self.table_z + _GRASP_HEIGHT + self.lift])
            target = self._aim(target, kwargs["aim_error"])
        elif name == "lower":
            offset = cube - grasp
            target = self.goal - offset + np.asarray([0.0, 0.0, 0.003])
        elif name == "retreat":
            target = grasp + np.asarray([0.0, 0.0, self.hover])
        elif name == "rest":
            end[:5] = self.rest_deg[:5]
            end[5] = self.rest_deg[5] + self.rng.uniform(-5.0, 5.0)
            joint_delta = float(np.max(np.abs(end[:5] - start[:5])))
            return _Segment(start, end, self._frames(self._move_seconds(0.15, joint_delta)))
        else:
            raise ValueError(f"unknown phase {name!r}")
        # Lowest acceptable heights: the pads above the cube's top before descending; the
        # carried cube high enough to count as lifted by the package's success test.
        lowest_z = {
            "approach": self.table_z + _GRASP_HEIGHT + 0.02,
            "lift": self.table_z + _GRASP_HEIGHT + 0.045,
            "carry": self.table_z + _GRASP_HEIGHT + 0.045,
            "retreat": self.table_z + _GRASP_HEIGHT + 0.03,
        }.get(name)
        # Only the grasp needs the jaws across the cube; afterwards the wrist roll is left alone.
        align = name in ("approach", "descend")
        end[:5] = self._arm_target(scene, target, lowest_z, align_jaws=align)
        if name == "approach":
            # Turn the wrist for the grasp while still above the cube: where the hover pose
            # cannot hold the jaws vertical, its roll differs from the grasp's, and turning
            # during the descent would knock the cube with a jaw.
            below = np.asarray([target[0], target[1], self.table_z + _GRASP_HEIGHT])
            end[4] = self._arm_target(scene, below)[4]
        distance = float(np.linalg.norm(scene.grasp_point_at(end[:5]) - grasp))
        joint_delta = float(np.max(np.abs(end[:5] - start[:5])))
        seconds = self._move_seconds(distance, joint_delta)
        if name in ("descend", "lower"):
            seconds *= 1.4  # careful near the table and the cube
        return _Segment(start, end, self._frames(seconds))
