"""What each trial asks Ray for (CPUs, GPUs, device), checked against the cluster's nodes before
any trial starts, and a check that every node sees the run's folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .plan import Plan, PlanError, base_flags


@dataclass
class TrialResources:
    cpus: int
    gpus: float
    device: str  # the --policy.device a trial gets when its flags do not set one

    def describe(self) -> str:
        gpu = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.cpus} CPU{gpu}, device {self.device}"


def plan_devices(plan: Plan) -> set[str]:
    """The policy.device values the plan's trials set (empty: the runner decides)."""
    devices = {base_flags(plan).get("policy.device")} | {st.set.get("policy.device") for st in plan.stages.values()}
    return {str(d) for d in devices if d is not None}


def wants_gpu(plan: Plan) -> bool:
    return any(d.startswith("cuda") for d in plan_devices(plan))


def requested_resources(plan: Plan, gpus_per_trial: float | None, cpus_per_trial: int | None,
                        cluster_gpus: float | None) -> TrialResources:
    """cluster_gpus: GPUs of the whole cluster, or None when unknown (dry run: nothing connected).

    GPUs per trial: the flag; else 1 when the plan sets policy.device=cuda, or when it sets no
    device and the cluster has GPUs; else 0."""
    if gpus_per_trial is not None and gpus_per_trial < 0:
        raise PlanError(f"--gpus_per_trial must be >= 0, got {gpus_per_trial:g}")
    if cpus_per_trial is not None and cpus_per_trial < 1:
        raise PlanError(f"--cpus_per_trial must be >= 1, got {cpus_per_trial}")
    devices = plan_devices(plan)
    if gpus_per_trial is not None:
        gpus = float(gpus_per_trial)
    elif wants_gpu(plan) or (not devices and cluster_gpus):
        gpus = 1.0
    else:
        gpus = 0.0
    if gpus == 0 and wants_gpu(plan):
        raise PlanError("the plan sets policy.device=cuda but --gpus_per_trial=0 gives its trials no GPU; "
                        "drop the flag or give a positive number")
    if gpus and devices and not wants_gpu(plan):
        raise PlanError(f"--gpus_per_trial={gpus:g}, but the plan runs its trials on {', '.join(sorted(devices))}; "
                        "set policy.device=cuda in the plan, or drop the flag")
    cpus = cpus_per_trial or 1
    return TrialResources(cpus=cpus, gpus=gpus, device="cuda" if gpus else "cpu")


def node_resources() -> list[dict]:
    """Alive nodes of the connected Ray cluster: {"id", "ip", "CPU", "GPU"}."""
    import ray

    return [{"id": n["NodeID"], "ip": n.get("NodeManagerAddress", "?"), "CPU": n["Resources"].get("CPU", 0),
             "GPU": n["Resources"].get("GPU", 0)} for n in ray.nodes() if n.get("Alive")]


def cluster_resources(plan: Plan, gpus_per_trial: float | None, cpus_per_trial: int | None,
                      nodes: list[dict]) -> TrialResources:
    """What each trial asks for on this cluster; PlanError when no node could ever run one."""
    total_gpus = sum(n["GPU"] for n in nodes)
    total_cpus = sum(n["CPU"] for n in nodes)
    if cpus_per_trial is None and total_gpus:
        cpus_per_trial = max(1, int(total_cpus // total_gpus))  # the CPUs that go with one GPU
    res = requested_resources(plan, gpus_per_trial, cpus_per_trial, total_gpus)
    fits = [n for n in nodes if n["GPU"] >= res.gpus and n["CPU"] >= res.cpus]
    if not fits:
        most_gpus = max((n["GPU"] for n in nodes), default=0)
        most_cpus = max((n["CPU"] for n in nodes), default=0)
        raise PlanError(
            f"each trial asks for {res.describe()}, but no node of the Ray cluster has that much (largest node: "
            f"{most_gpus:g} GPU, {most_cpus:g} CPU; {len(nodes)} node(s)); lower --gpus_per_trial / --cpus_per_trial, "
            "or add a node that has them")
    return res


def check_nodes_see(files: list[Path], nodes: list[dict], timeout_s: float = 300) -> None:
    """Every node must read the same bytes at the same path for each file (the run's output_dir and
    dataset live on storage every node sees); PlanError naming the nodes and paths that do not."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    if len(nodes) < 2:
        return

    def digests(paths: list[str]) -> list[str | None]:
        # Nested, standard library only: it travels to the workers by value, without importing
        # this package (seconds per worker).
        import hashlib

        out = []
        for path in paths:
            try:
                with open(path, "rb") as f:
                    out.append(hashlib.sha256(f.read()).hexdigest())
            except OSError:
                out.append(None)
        return out

    paths = [str(f) for f in files]
    expected = digests(paths)
    probe = ray.remote(num_cpus=0)(digests)
    refs = {n["ip"] + " (" + n["id"][:8] + ")": probe.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=n["id"], soft=False)).remote(paths) for n in nodes}
    problems = []
    for node, ref in refs.items():
        seen = ray.get(ref, timeout=timeout_s)
        problems += [f"{node} does not see {p}" + (" (other content)" if got else "")
                     for p, want, got in zip(paths, expected, seen, strict=True) if got != want]
    if problems:
        raise PlanError(
            "not every node of the Ray cluster sees the run's files: " + "; ".join(problems) + ". Put --output_dir "
            "and the dataset on storage every node mounts at the same path (for a hub dataset: HF_LEROBOT_HOME on "
            "shared storage, or the dataset fetched into each node's own HF_LEROBOT_HOME at the same path with "
            "`python -m lerobot_policy_act_smooth.experiments.hub --repo_id=REPO_ID`)")
