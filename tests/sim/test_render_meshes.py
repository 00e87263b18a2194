"""Decimated render meshes: fewer triangles for the cameras, the same physics."""

import sys

import mujoco
import numpy as np
import pytest

from lerobot_policy_act_smooth.sim import render_meshes
from lerobot_policy_act_smooth.sim.config_so101_sim import SO101SimConfig
from lerobot_policy_act_smooth.sim.dataset import record_demonstration
from lerobot_policy_act_smooth.sim.env import SO101JointEnv
from lerobot_policy_act_smooth.sim.lerobot_env import SO101SimEnv
from lerobot_policy_act_smooth.sim.scene import ASSETS_DIR, PickPlaceScene, _scene_model

CAMERA = {"top": (24, 32)}
BUDGET = 20000


def drawn_mesh_triangles(model: mujoco.MjModel) -> int:
    """Triangles of the mesh geoms a camera draws (groups 0-2; group 3 is collision)."""
    drawn = (model.geom_type == mujoco.mjtGeom.mjGEOM_MESH) & (model.geom_group < 3)
    return int(model.mesh_facenum[model.geom_dataid[drawn]].sum())


@pytest.fixture(scope="module")
def models():
    return _scene_model(CAMERA, 0), _scene_model(CAMERA, BUDGET)


def test_decimated_model_draws_far_fewer_triangles(models):
    full, decimated = models
    assert drawn_mesh_triangles(full) > 300_000
    assert drawn_mesh_triangles(decimated) < 1.1 * BUDGET
    # Without a camera nothing is drawn, so the scene keeps the package's meshes only.
    assert _scene_model({}, BUDGET).nmesh == full.nmesh


def test_collision_meshes_masses_and_inertias_are_untouched(models):
    full, decimated = models
    for field in ("body_mass", "body_inertia", "body_ipos", "body_iquat", "body_bvhnum", "body_bvhadr",
                  "geom_contype", "geom_conaffinity", "geom_bodyid", "geom_type"):
        np.testing.assert_array_equal(getattr(full, field), getattr(decimated, field), err_msg=field)
    colliding = (full.geom_contype != 0) | (full.geom_conaffinity != 0)
    for field in ("geom_dataid", "geom_pos", "geom_quat", "geom_size", "geom_rbound", "geom_aabb", "geom_friction"):
        np.testing.assert_array_equal(getattr(full, field)[colliding], getattr(decimated, field)[colliding], field)
    # The package's meshes come first and are the same vertices and faces; copies are appended.
    for mesh in range(full.nmesh):
        for data, address, count in (("mesh_vert", "mesh_vertadr", "mesh_vertnum"),
                                     ("mesh_face", "mesh_faceadr", "mesh_facenum")):
            start, size = getattr(full, address)[mesh], getattr(full, count)[mesh]
            other = getattr(decimated, address)[mesh]
            np.testing.assert_array_equal(getattr(full, data)[start:start + size],
                                          getattr(decimated, data)[other:other + size])
    # Each body's collision tree (the mid-phase) is the same.
    body_nodes = full.body_bvhadr.max() + full.body_bvhnum[full.body_bvhadr.argmax()]
    np.testing.assert_array_equal(full.bvh_aabb[:body_nodes], decimated.bvh_aabb[:body_nodes])
    # Only visual-only geoms were moved to the copies.
    moved = full.geom_dataid != decimated.geom_dataid
    assert moved.any() and not colliding[moved].any()
    assert (decimated.geom_dataid[moved] >= full.nmesh).all()


def test_demonstration_physics_is_bit_identical_with_decimated_meshes():
    """A scripted pick and place (contacts with the cube included) replayed on both models."""
    state_env = SO101JointEnv(max_steps=700)
    demo = record_demonstration(state_env, seed=4321)
    state_env.close()
    assert demo.success
    trajectories = []
    for camera_sizes, faces in (({}, BUDGET), (CAMERA, BUDGET), (CAMERA, 0)):
        scene = PickPlaceScene(camera_sizes=camera_sizes, render_mesh_faces=faces)
        scene.reset(seed=4321)
        rows = []
        for action in demo.actions:
            scene.step(action)
            rows.append(np.concatenate([scene.data.qpos, scene.data.qvel]))
        scene.close()
        trajectories.append(np.asarray(rows))
    no_camera, decimated, full = trajectories
    assert np.array_equal(no_camera, decimated) and np.array_equal(no_camera, full)


@pytest.mark.parametrize("camera, max_difference", [("top", 2.0), ("wrist", 5.0)])
def test_decimated_frames_look_like_full_frames(camera, max_difference):
    frames, triangles = [], []
    for faces in (0, BUDGET):
        env = SO101JointEnv(cameras={camera: (96, 128)}, render_mesh_faces=faces)
        obs, _ = env.reset(seed=3)
        for _ in range(10):  # a pose off the ready pose, jaws opening
            obs, *_ = env.step(obs["observation.state"] + np.asarray([10, 8, -8, 0, 0, 15], dtype=np.float32))
        frames.append(obs[f"observation.images.{camera}"])
        triangles.append(drawn_mesh_triangles(env.scene.model))
        env.close()
    full, decimated = frames
    assert triangles[1] < triangles[0] / 10
    assert decimated.shape == (96, 128, 3) and decimated.dtype == np.uint8
    assert decimated.std() > 10  # a scene, not a blank frame
    # Mean absolute difference per channel (0-255); measured 0.5 (top) and 0.14 (wrist) here.
    # The wrist camera, a few centimetres from the jaws, is where coarser meshes show first.
    assert np.abs(full.astype(int) - decimated.astype(int)).mean() < max_difference


def test_decimated_meshes_are_cached_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTSMOOTH_CACHE_DIR", str(tmp_path))
    plate = ASSETS_DIR / "assets" / "waveshare_mounting_plate_so101_v2.stl"  # 1254 triangles
    decimate_uncached = render_meshes.decimated_stl.__wrapped__  # skip the per-process cache
    vertices, faces = decimate_uncached(str(plate), 300)
    files = list((tmp_path / "render_meshes").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and "-300-" in files[0].name
    assert 100 <= len(faces) <= 300 and faces.max() < len(vertices)
    again = decimate_uncached(str(plate), 300)
    np.testing.assert_array_equal(again[0], vertices)
    np.testing.assert_array_equal(again[1], faces)


@pytest.mark.parametrize("value", [-1, 1, 999, 2.5, True, "20000"])
def test_bad_render_mesh_faces_are_refused(tmp_path, value):
    with pytest.raises(ValueError, match=r"--robot.render_mesh_faces must be 0 \(render the full meshes\) or"):
        SO101SimConfig(calibration_dir=tmp_path, render_mesh_faces=value)
    with pytest.raises(ValueError, match=r"--env.render_mesh_faces must be 0"):
        SO101SimEnv(render_mesh_faces=value)
    with pytest.raises(ValueError, match="render_mesh_faces must be 0"):
        SO101JointEnv(render_mesh_faces=value)


def test_good_render_mesh_faces_reach_the_environment(tmp_path):
    assert SO101SimConfig(calibration_dir=tmp_path, render_mesh_faces=0).render_mesh_faces == 0
    assert SO101SimEnv(cameras="top", render_mesh_faces=5000).gym_kwargs["render_mesh_faces"] == 5000


def test_missing_decimator_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "fast_simplification", None)  # import now raises ImportError
    vertices = np.asarray([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    faces = np.asarray([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    with pytest.raises(ImportError, match="pip install fast-simplification.*render_mesh_faces=0"):
        render_meshes.decimate(vertices, faces, 2)
