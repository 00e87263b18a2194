"""Time per simulated camera frame, full CAD meshes vs decimated render meshes.

For each triangle budget (--faces; 0 = the full meshes) and image size (--sizes) it builds the
scene with that camera, moves the arm between frames as an episode would, and times
``render_camera`` (scene update, draw and pixel read-back: what a robot observation costs).
Prints the OpenGL back end, the rendered triangle count of the arm's visual meshes, and the
median and 90th percentile milliseconds per frame.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_render.py
    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_render.py --faces=0,5000,20000 --camera=wrist

The first run with a new budget decimates the meshes (a few seconds) and caches them under
~/.cache/lerobot_policy_act_smooth/render_meshes; that is done before the timing starts.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from lerobot_policy_act_smooth.sim.scene import PickPlaceScene  # noqa: E402


def rendered_arm_triangles(model: mujoco.MjModel) -> int:
    """Triangles drawn for the mesh geoms a default camera shows (groups 0-2: not collision)."""
    drawn = (model.geom_type == mujoco.mjtGeom.mjGEOM_MESH) & (model.geom_group < 3)
    return int(model.mesh_facenum[model.geom_dataid[drawn]].sum())


def opengl_renderer_name() -> str:
    """The GL_RENDERER string of the current context (e.g. llvmpipe: software rendering)."""
    try:
        from OpenGL import GL

        return GL.glGetString(GL.GL_RENDERER).decode()
    except Exception as exc:  # PyOpenGL missing or no current context
        return f"unknown ({type(exc).__name__})"


def time_frames(scene: PickPlaceScene, camera: str, frames: int) -> np.ndarray:
    """Seconds per ``render_camera`` call over ``frames`` frames, the arm moving in between."""
    scene.reset(seed=0)
    start = scene.leader_deg()
    scene.render_camera(camera)  # the first frame uploads the meshes to the GL context
    seconds = []
    for frame in range(frames):
        # Sweep the shoulder and elbow a little so every frame draws a new pose.
        offset = 10.0 * np.sin(2 * np.pi * frame / frames) * np.asarray([1, 0.5, -0.5, 0, 0, 0])
        scene.step(start + offset)
        began = time.perf_counter()
        scene.render_camera(camera)
        seconds.append(time.perf_counter() - began)
    return np.asarray(seconds)


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(part) for part in text.lower().split("x"))
    return height, width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", default="0,20000", help="comma-separated triangle budgets; 0 = full meshes")
    parser.add_argument("--sizes", default="96x128,480x640", help="comma-separated HEIGHTxWIDTH")
    parser.add_argument("--camera", default="top", choices=["top", "wrist"])
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()

    print(f"MUJOCO_GL={os.environ['MUJOCO_GL']}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start, camera {args.camera}, {args.frames} frames each")
    for faces in (int(text) for text in args.faces.split(",")):
        for height, width in (parse_size(text) for text in args.sizes.split(",")):
            scene = PickPlaceScene(camera_sizes={args.camera: (height, width)}, render_mesh_faces=faces)
            seconds = time_frames(scene, args.camera, args.frames) * 1000
            if faces == 0 and (height, width) == parse_size(args.sizes.split(",")[0]):
                print(f"OpenGL renderer: {opengl_renderer_name()}")
            label = "full meshes" if faces == 0 else f"budget {faces}"
            print(f"{label:>14} ({rendered_arm_triangles(scene.model):>6} triangles) {height:>4}x{width:<4}: "
                  f"median {np.median(seconds):6.1f} ms, p90 {np.percentile(seconds, 90):6.1f} ms per frame")
            scene.close()
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
