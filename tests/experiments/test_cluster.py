"""A two-node Ray cluster on one machine (ray.cluster_utils.Cluster): the runner connects with
--ray_address, trials run on both nodes, and removing the worker node during a trial still
completes the plan (Ray retries the task, the trial resumes from its checkpoint)."""

import json
import time

import pytest

from plan_helpers import plan_text, popen_cli, write_plan

STAGES = """
[stages.s]
steps = 40
sweep."policy.optimizer_lr" = [1e-3, 3e-4]
"""


@pytest.fixture(scope="module")
def two_node_cluster():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()


def _attempts(tdir):
    f = tdir / "attempts.jsonl"
    return [json.loads(x) for x in f.read_text().splitlines()] if f.is_file() else []


def test_trials_on_both_nodes_and_node_loss(two_node_cluster, exp_dataset_root, tmp_path):
    cluster, worker = two_node_cluster
    worker_id, head_id = worker.node_id, cluster.head_node.node_id
    plan = write_plan(tmp_path / "p.toml", plan_text(exp_dataset_root, STAGES, batch_size=64, save_freq=10))
    out = tmp_path / "run"
    proc = popen_cli(["run", f"--plan={plan}", f"--output_dir={out}", f"--ray_address={cluster.address}",
                      "--report=false"], tmp_path / "runner.log")
    trials = [out / "s" / "optimizer_lr_0.001", out / "s" / "optimizer_lr_0.0003"]
    try:
        deadline = time.time() + 400
        victim = None
        while victim is None and time.time() < deadline and proc.poll() is None:
            for t in trials:
                a = _attempts(t)
                if a and a[0]["node_id"] == worker_id and (t / "train/checkpoints/000010").is_dir():
                    victim = t
            time.sleep(0.2)
        log = (tmp_path / "runner.log").read_text()
        assert victim is not None, f"no trial checkpointed on the worker node\n{log}"
        assert not (victim / "DONE.json").exists()
        cluster.remove_node(worker)
        rc = proc.wait(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "runner.log").read_text()
    assert rc == 0, log
    first_nodes = {_attempts(t)[0]["node_id"] for t in trials}
    assert first_nodes == {worker_id, head_id}  # one trial on each node
    a = _attempts(victim)
    assert len(a) == 2 and a[1]["node_id"] == head_id and a[1]["resume_from"] >= 10
    for t in trials:
        done = json.loads((t / "DONE.json").read_text())
        assert done["steps"] == 40
        steps = [int(r.split(",")[0]) for r in (t / "loss.csv").read_text().splitlines()[1:]]
        assert steps == list(range(1, 41))
    assert set(json.loads((victim / "DONE.json").read_text())["node_ids"]) == {worker_id, head_id}
