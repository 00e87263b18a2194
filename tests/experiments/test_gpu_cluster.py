"""GPUs on Ray: a two-node ray.cluster_utils.Cluster whose nodes declare one GPU each (Ray accepts
declared GPUs on a CPU machine). A plan with policy.device=cuda asks one GPU per trial; the plan's
two-machine schedule comes out of start_early (relative starts at once on the second GPU while the
LR sweep runs on the first, the dropout sweep then spreads over both); a plan asking more GPUs per
trial than any node has is refused before anything is written.

The trials are a stand-in for run_trial (lerobot-train + evaluations) that records where it ran
and writes the loss.csv / DONE.json a finished trial leaves, so that the real scheduler picks the
winners; real training is covered by test_runner_local.py and test_cluster.py."""

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from lerobot_policy_act_smooth.experiments.plan import PlanError, load_plan
from lerobot_policy_act_smooth.experiments.runner import RunOptions, run_plan
from plan_helpers import plan_text, write_plan

SECONDS_PER_STEP = 0.05
STAGES = """
[stages.lr]
steps = 20
sweep."policy.optimizer_lr" = [1e-4, 1e-3, 1e-2]
[stages.drop]
steps = 10
sweep."policy.dim_feedforward" = [32, 64]
set."policy.optimizer_lr" = "winner:lr"
[stages.rel]
steps = 40
set."policy.optimizer_lr" = "winner:lr"
start_early = { "policy.optimizer_lr" = 1e-3 }
"""


def stand_in_trial(spec: dict, output_dir: str, device: str = "cpu", num_threads: int = 1) -> dict:
    """Stands for run_trial: sleeps in proportion to the steps, records node, GPUs and times; the
    final loss is lowest for lr 1e-3. Standard library and Ray only (a worker starts in a second)."""
    import math

    import ray

    tdir = Path(output_dir) / spec["stage"] / spec["name"]
    tdir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    time.sleep(spec["steps"] * SECONDS_PER_STEP)
    loss = 0.1 + abs(math.log10(spec["flags"]["policy.optimizer_lr"]) + 3)
    (tdir / "loss.csv").write_text("step,loss,lr,attempt\n" + "".join(f"{s},{loss},0,1\n" for s in (1, 2)))
    ran = {"node": ray.get_runtime_context().get_node_id(), "gpus": [str(g) for g in ray.get_gpu_ids()],
           "device": device, "start": start, "end": time.time(), "dataset_root": spec["flags"]["dataset.root"]}
    (tdir / "ran.json").write_text(json.dumps(ran))
    done = {"trial": f"{spec['stage']}/{spec['name']}", "steps": spec["steps"], "evaluations": {}}
    (tdir / "DONE.json").write_text(json.dumps(done))
    return done


@pytest.fixture(scope="module")
def gpu_cluster():
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the stand-in travels to the workers
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "num_gpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


@pytest.fixture
def hub_plan(tmp_path, monkeypatch, exp_dataset_root):
    """The plan names its dataset by id alone; it sits in a temporary LeRobot cache."""
    home = tmp_path / "lerobot_home"
    shutil.copytree(exp_dataset_root, home / "test" / "tiny_exp")
    monkeypatch.setenv("HF_LEROBOT_HOME", str(home))
    text = plan_text(None, STAGES, extra_policy='device = "cuda"\n')
    return load_plan(write_plan(tmp_path / "p.toml", text)), home / "test" / "tiny_exp"


def test_one_gpu_per_trial_and_the_two_machine_schedule(gpu_cluster, hub_plan, tmp_path):
    plan, cache_root = hub_plan
    out = tmp_path / "run"
    lines = []
    t0 = time.time()
    opts = RunOptions(output_dir=out, ray_address=gpu_cluster.address, trial_function=stand_in_trial,
                      write_report=False, poll_s=0.2)
    assert run_plan(plan, opts, out=lambda s: lines.append(f"{time.time() - t0:.1f} {s}")) == 0, "\n".join(lines)
    assert any("each trial asks for 1 CPU, 1 GPU, device cuda" in ln for ln in lines), lines
    ran = {f"{p.parent.parent.name}/{p.parent.name}": json.loads(p.read_text()) for p in out.glob("*/*/ran.json")}
    assert set(ran) == {"lr/optimizer_lr_0.0001", "lr/optimizer_lr_0.001", "lr/optimizer_lr_0.01",
                        "drop/dim_feedforward_32", "drop/dim_feedforward_64", "rel/run.early"}  # early start adopted
    for key, r in ran.items():
        assert len(r["gpus"]) == 1 and r["device"] == "cuda", (key, r)
        # every trial trains on the cached copy, through the training view (training episodes' statistics)
        view = Path(r["dataset_root"])
        assert view.parent == out / "dataset_views", r["dataset_root"]
        assert json.loads((view / "meta" / "training_view.json").read_text())["source"] == str(cache_root.resolve())
        assert (view / "data").resolve() == (cache_root / "data").resolve()
    # One GPU per node: trials on the same node never overlap.
    for a in ran.values():
        for b in ran.values():
            if a is not b and a["node"] == b["node"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"]
    lr = [r for k, r in ran.items() if k.startswith("lr/")]
    early, drop = ran["rel/run.early"], [r for k, r in ran.items() if k.startswith("drop/")]
    # Relative prediction starts at once on one GPU while the LR sweep runs on the other (a GPU that
    # frees up takes the next queued trial); the dropout sweep waits for the LR winner.
    assert early["start"] < min(r["end"] for r in lr)
    first_lr = min(lr, key=lambda r: r["start"])
    assert first_lr["node"] != early["node"] and first_lr["start"] < early["end"]
    assert min(r["start"] for r in drop) >= max(r["end"] for r in lr)
    assert {r["node"] for r in drop} == {first_lr["node"], early["node"]}  # spread over both GPUs
    assert json.loads((out / "lr" / "stage.json").read_text())["winner"] == "lr/optimizer_lr_0.001"


@pytest.mark.parametrize("flag, value", [("gpus_per_trial", 2.0), ("cpus_per_trial", 4)])
def test_more_than_any_node_has_is_refused(gpu_cluster, hub_plan, tmp_path, flag, value):
    plan, _ = hub_plan
    out = tmp_path / "run"
    opts = RunOptions(output_dir=out, ray_address=gpu_cluster.address, trial_function=stand_in_trial,
                      **{flag: value})
    with pytest.raises(PlanError, match="no node of the Ray cluster has that much"):
        run_plan(plan, opts, out=lambda _: None)
    assert not out.exists()
