"""The simulated SO-101 robot type: plugin registration, the Robot interface on the real MuJoCo
scene, episodes, and the preprocessor step that feeds a low-dimensional policy."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from lerobot.robots import make_robot_from_config

from lerobot_policy_act_smooth.processor_act_smooth import SplitEnvironmentStateStep
from lerobot_policy_act_smooth.sim.config_so101_sim import SO101SimConfig
from lerobot_policy_act_smooth.sim.so101_sim import SO101Sim

JOINTS = ["shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos", "wrist_flex.pos", "wrist_roll.pos", "gripper.pos"]


def test_plugin_import_registers_so101_sim_and_stays_light():
    # What LeRobot's register_third_party_plugins does for our distribution: import it by name.
    # The robot, scene (MuJoCo) and modeling modules must load only when used. (lerobot-rollout
    # finding the type through the real plugin import is test_rollout's.)
    code = (
        "import sys\n"
        "import lerobot_policy_act_smooth\n"
        "from lerobot.robots.config import RobotConfig\n"
        "from lerobot.envs.configs import EnvConfig\n"
        "assert 'so101_sim' in RobotConfig.get_known_choices(), RobotConfig.get_known_choices()\n"
        "assert 'so101_sim' in EnvConfig.get_known_choices(), EnvConfig.get_known_choices()\n"
        "heavy = [m for m in ('mujoco', 'lerobot_policy_act_smooth.sim.so101_sim', 'lerobot_policy_act_smooth.sim.scene',\n"
        "    'lerobot_policy_act_smooth.modeling_act_smooth') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ)
    assert proc.returncode == 0, proc.stderr[-2000:]


def make_robot(tmp_path, **kwargs) -> SO101Sim:
    robot = make_robot_from_config(SO101SimConfig(calibration_dir=tmp_path / "calibration", **kwargs))
    assert isinstance(robot, SO101Sim)
    return robot


def test_robot_interface_and_episodes(tmp_path):
    robot = make_robot(tmp_path, seed=5, idle_reset_s=0.05)
    robot.connect()
    try:
        obs = robot.get_observation()
        assert list(obs)[:6] == JOINTS and len(obs) == 17 and obs["success.pos"] == 0.0
        assert list(robot.action_features) == JOINTS
        target = {k: obs[k] for k in JOINTS}
        target["shoulder_pan.pos"] += 20.0
        target["cube.x.pos"] = 1.0  # extra keys (LeRobot's return-to-start sends them) are ignored
        for _ in range(30):
            sent = robot.send_action(target)
        moved = robot.get_observation()
        assert moved["shoulder_pan.pos"] - obs["shoulder_pan.pos"] > 10.0  # one second of servo motion
        assert sent["shoulder_pan.pos"] == pytest.approx(target["shoulder_pan.pos"], abs=1e-4)
        assert robot.episodes[0]["steps"] == 30
        # No action for idle_reset_s: the next observation starts a new episode (new cube/target).
        time.sleep(0.1)
        fresh = robot.get_observation()
        assert robot.episode_index == 1
        assert (fresh["target.x.pos"], fresh["target.y.pos"]) != (obs["target.x.pos"], obs["target.y.pos"])
    finally:
        robot.disconnect()
    assert not robot.is_connected


def test_camera_frames(tmp_path):
    robot = make_robot(tmp_path, sim_cameras="top", camera_height=24, camera_width=32)
    assert robot.observation_features["top"] == (24, 32, 3)
    robot.connect()
    try:
        frame = robot.get_observation()["top"]
    finally:
        robot.disconnect()
    assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8 and frame.std() > 0


@pytest.mark.parametrize(
    "kwargs, message",
    [({"sim_cameras": "top,side"}, "unknown camera"), ({"fps": 1}, "--robot.fps"), ({"idle_reset_s": 0}, "idle_reset_s")],
)
def test_config_refuses_bad_values(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        SO101SimConfig(calibration_dir=tmp_path, **kwargs)


def test_split_step_feeds_state_and_environment_state():
    step = SplitEnvironmentStateStep(state_dim=6, env_dim=10)
    combined = torch.arange(17, dtype=torch.float32).reshape(1, 17)
    out = step.observation({"observation.state": combined})
    torch.testing.assert_close(out["observation.state"], combined[:, :6])
    torch.testing.assert_close(out["observation.environment_state"], combined[:, 6:16])
    already = {"observation.state": combined[:, :6], "observation.environment_state": combined[:, 6:16]}
    assert step.observation(dict(already)).keys() == already.keys()
    with pytest.raises(ValueError, match="needs the 6 joint values followed by the 10 environment-state values"):
        step.observation({"observation.state": combined[:, :12]})


def test_env_type_for_lerobot_eval_gives_the_policy_keys():
    from lerobot.envs.configs import EnvConfig
    from lerobot.envs.utils import preprocess_observation

    from lerobot_policy_act_smooth.sim.lerobot_env import SO101SimEnv

    assert EnvConfig.get_choice_class("so101_sim") is SO101SimEnv
    envs = SO101SimEnv(episode_length=5).create_envs(n_envs=1)
    vec = envs["so101_sim"][0]
    try:
        obs, _ = vec.reset(seed=[0])
        assert vec.call("_max_episode_steps")[0] == 5 and vec.call("task_description")[0]
        batch = preprocess_observation(obs)
        assert batch["observation.state"].shape == (1, 6) and batch["observation.environment_state"].shape == (1, 10)
        for step in range(5):
            obs, reward, terminated, truncated, info = vec.step(obs["agent_pos"])
        assert truncated[0]  # the episode length reaches the environment
    finally:
        vec.close()


def test_add_environment_split_to_an_older_checkpoint(sim_shaped_checkpoint, tmp_path):
    import json
    import shutil

    from lerobot.processor import PolicyProcessorPipeline

    from lerobot_policy_act_smooth.processor_act_smooth import PREPROCESSOR_FILE, add_environment_split, main

    # An older checkpoint: the same folder without the split step (normaliser back at step 3).
    old = tmp_path / "old"
    shutil.copytree(sim_shaped_checkpoint, old)
    pipeline = json.loads((old / PREPROCESSOR_FILE).read_text())
    pipeline["steps"] = [s for s in pipeline["steps"] if "SplitEnvironmentStateStep" not in s.get("class", "")]
    state_file = pipeline["steps"][3]["state_file"]
    pipeline["steps"][3]["state_file"] = state_file.replace("_step_4_", "_step_3_")
    (old / state_file).rename(old / pipeline["steps"][3]["state_file"])
    (old / PREPROCESSOR_FILE).write_text(json.dumps(pipeline))

    new = add_environment_split(old, tmp_path / "new")
    assert json.loads((new / PREPROCESSOR_FILE).read_text()) == json.loads((sim_shaped_checkpoint / PREPROCESSOR_FILE).read_text())
    pre = PolicyProcessorPipeline.from_pretrained(new, config_filename=PREPROCESSOR_FILE)
    out = pre({"observation.state": torch.zeros(1, 17)})
    assert out["observation.state"].shape == (1, 6) and out["observation.environment_state"].shape == (1, 10)
    # Refused with one line: an existing output, a checkpoint that already has the step.
    assert main([str(old), str(new)]) == 2
    assert main([str(new), str(tmp_path / "again")]) == 2 and not (tmp_path / "again").exists()
