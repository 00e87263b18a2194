"""actsmooth-dataset: bad input gives one line, a non-zero exit, and touches nothing."""

import os
import subprocess
import sys

import pytest

from lerobot_policy_act_smooth.sim.dataset_cli import main


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--episodes=0"], "--episodes must be a positive integer"),
        (["--episodes=-3"], "--episodes must be a positive integer"),
        (["--cameras=front"], "unknown camera 'front'"),
        (["--cameras=top", "--top_size=4x100000"], "out of range"),
        (["--cameras=wrist", "--wrist_size=big"], "--wrist_size must be HEIGHTxWIDTH"),
        (["--fps=0"], "--fps must be"),
        (["--cameras=top", "--render_mesh_faces=10"], "--render_mesh_faces must be 0 (render the full meshes)"),
    ],
)
def test_bad_arguments(tmp_path, capsys, extra, message):
    root = tmp_path / "out"
    code, err = run_cli([f"--root={root}", *extra], capsys)
    assert code == 2
    assert len(err) == 1 and message in err[0] and err[0].startswith("actsmooth-dataset: error:")
    assert not root.exists()


def test_missing_root(capsys):
    code, err = run_cli(["--episodes=1"], capsys)
    assert code == 2 and "--root is required" in err[0]


def test_refuses_a_folder_with_data_even_with_overwrite(tmp_path, capsys):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    code, err = run_cli([f"--root={root}", "--episodes=1"], capsys)
    assert code == 2 and "already holds data" in err[0] and "--overwrite" in err[0]
    code, err = run_cli([f"--root={root}", "--episodes=1", "--overwrite=true"], capsys)
    assert code == 2 and "not a LeRobot dataset folder" in err[0]
    assert (root / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_no_renderer_names_the_mujoco_gl_to_try(tmp_path):
    # A real headless failure: GLFW needs a display, which the test process does not give it.
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env.update(MUJOCO_GL="glfw", HF_HUB_OFFLINE="1")
    root = tmp_path / "cams"
    cmd = [
        sys.executable,
        "-m",
        "lerobot_policy_act_smooth.sim.dataset_cli",
        f"--root={root}",
        "--episodes=1",
        "--cameras=top",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("actsmooth-dataset:")]
    assert len(lines) == 1 and "MUJOCO_GL=egl" in lines[0] and "osmesa" in lines[0]
    assert not root.exists()
