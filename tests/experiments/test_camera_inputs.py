"""Bad camera input in a plan: a camera the simulator does not have, an image size the backbone
reduces to nothing, a backbone name torchvision does not know. Each is one clear error from
`actsmooth-experiment run`, before anything starts: no dataset generated, no Ray, no file written."""

import pytest

from lerobot_policy_act_smooth.experiments.cli import main
from plan_helpers import write_plan

PLAN = """
name = "cams"
seed = 7
[dataset]
repo_id = "test/cams"
root = "{root}"
heldout_episodes = 1
[dataset.generate]
episodes = 3
cameras = {cameras}
[train]
batch_size = 4
[policy]
type = "act_smooth"
chunk_size = 10
n_action_steps = 10
pretrained_backbone_weights = "null"
vision_backbone = "{backbone}"
[stages.baseline]
steps = 10
"""


@pytest.mark.parametrize(
    "cameras, backbone, message",
    [
        ('{ front = [64, 64] }', "resnet18", "[dataset.generate] cameras: unknown camera 'front': choose from top, wrist"),
        ('{ top = [8, 8] }', "vit_b_16", "vision_backbone 'vit_b_16' leaves nothing usable of observation.images.top at 8x8"),
        ('{ top = [64, 64] }', "resnet_magic", "vision_backbone 'resnet_magic' is not a torchvision classification model"),
    ],
    ids=["unknown camera", "image too small", "unknown backbone"],
)
def test_bad_camera_input_is_one_error_and_starts_nothing(tmp_path, capsys, cameras, backbone, message):
    import ray

    root = tmp_path / "data"
    plan = write_plan(tmp_path / "p.toml", PLAN.format(root=root, cameras=cameras, backbone=backbone))
    out = tmp_path / "out"
    for extra in (["--dry_run=true"], []):
        assert main(["run", f"--plan={plan}", f"--output_dir={out}", *extra]) != 0
        err = capsys.readouterr().err
        assert message in err and err.count("  - ") == 1, err  # one problem listed, the one made
    assert not root.exists() and not out.exists() and not ray.is_initialized()


def test_a_good_camera_plan_passes_the_check():
    from lerobot_policy_act_smooth.experiments.plan import check_camera_inputs, load_plan

    plan = load_plan("cpu")
    plan.dataset.generate["cameras"] = {"top": [64, 64], "wrist": [64, 64]}
    plan.policy["vision_backbone"] = "shufflenet_v2_x0_5"
    assert check_camera_inputs(plan) == []
