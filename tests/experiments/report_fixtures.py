"""Hand-made finished trials for the report tests: trial folders laid out as the runner writes them
(trial.json, loss.csv, eval/<name>_metrics.json, DONE.json last), with per-episode rows whose
values the tests choose, so that every number of the report can be worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

from lerobot_policy_act_smooth.evaluation.closed_loop_results import summarize
from lerobot_policy_act_smooth.evaluation.metrics import PROFILE_HALF_WIDTH, aggregate
from lerobot_policy_act_smooth.experiments.plan import TrialSpec
from lerobot_policy_act_smooth.experiments.trial import DONE_FILE

PROFILE_LENGTH = 2 * PROFILE_HALF_WIDTH + 1  # offsets -15 .. +15

# Closed-form t quantiles and the episode split the hand-made trials use.
T_975_DF1 = math.tan(math.pi * 0.475)  # t quantile, 1 df: the Cauchy quantile
T_975_DF2 = 0.95 * math.sqrt(2 / (1 - 0.95**2))  # 2 df: F(t) = 1/2 + t / (2 sqrt(2 + t^2)) solved for t
HELDOUT, VALIDATION, TEST = [10, 11, 12, 13], [10], [11, 12, 13]


def profile(level: float, humps: dict[int, float] | None = None) -> list[float]:
    """A boundary profile (PROFILE_LENGTH floats): `level` at every offset, `humps` {offset: value}."""
    values = [float(level)] * PROFILE_LENGTH
    for offset, value in (humps or {}).items():
        values[offset + PROFILE_HALF_WIDTH] = float(value)
    return values


# Every key a replay row of the report is read for; a test overrides the ones it computes with.
REPLAY_DEFAULTS = {
    "U_a": 1.0, "U_a_inside": 0.8, "U_a_boundary": 1.6, "spike": 1.1, "spike_transition": 1.2, "mae": 1.0,
    "sparc": -1.5, "ldlj": -6.0, "replan_mean": 0.4, "replan_max": 0.9, "num_chunks": 4,
    "truth_U_a": 1.0, "truth_U_a_inside": 0.9, "truth_U_a_boundary": 1.1, "truth_spike": 1.0,
    "truth_spike_transition": 1.0, "truth_sparc": -1.5, "truth_ldlj": -6.0,
}
CLOSED_LOOP_DEFAULTS = {
    "success": True, "num_frames": 90, "num_chunks": 3, "obs_U_a": 0.5, "obs_mu_v": 0.3, "obs_spike": 1.0,
    "action_U_a": 1.0, "action_U_a_inside": 0.8, "action_U_a_boundary": 1.6, "action_spike": 1.1,
    "action_spike_transition": 1.2, "action_sparc": -1.5, "action_ldlj": -6.0, "demo_action_U_a": 1.0,
    "demo_action_spike": 1.0, "demo_action_spike_transition": 1.0, "demo_action_sparc": -1.5,
    "demo_action_ldlj": -6.0, "replan_mean": 0.4, "replan_max": 0.9,
}


def replay_row(episode: int, **values) -> dict:
    """One episode's row of a replay metrics file; profiles default to a flat 1.0."""
    row = {"episode": episode, **REPLAY_DEFAULTS}
    for key in ("profile_acc", "profile_jerk", "truth_profile_acc", "truth_profile_jerk"):
        row[key] = profile(1.0)
    row.update(values)
    return row


def closed_loop_row(episode: int, **values) -> dict:
    """One episode's row of a closed-loop metrics file; profiles default to a flat 1.0."""
    row = {"episode": episode, "seed": episode, "boundaries": [30, 60], **CLOSED_LOOP_DEFAULTS}
    for key in ("action_profile_acc", "action_profile_jerk", "demo_action_profile_acc", "demo_action_profile_jerk"):
        row[key] = profile(1.0)
    row.update(values)
    return row


def trial_spec(stage: str, seed: int, seeds: list[int], heldout: list[int], validation: list[int], *,
               label: str | None = None, steps: int = 8, replay_modes=("gt_prefix", "self_chaining"),
               closed_loop_episodes: int = 0, evaluate_checkpoint_of: str | Path | None = None,
               init_checkpoint_of: str | Path | None = None) -> TrialSpec:
    """A resolved trial of a stage without a sweep (variant "run"), named as the runner names it."""
    name = f"run.seed{seed}" if len(seeds) > 1 else "run"
    label = label or stage
    return TrialSpec(
        stage=stage, name=name, label=label + (f" seed {seed}" if len(seeds) > 1 else ""),
        steps=0 if evaluate_checkpoint_of else steps, flags={"policy.type": "act", "steps": steps, "seed": seed},
        variant="run", seed=seed,
        evaluate_checkpoint_of=str(evaluate_checkpoint_of) if evaluate_checkpoint_of else None,
        init_checkpoint_of=str(init_checkpoint_of) if init_checkpoint_of else None,
        replay_modes=list(replay_modes), closed_loop=closed_loop_episodes > 0,
        closed_loop_episodes=closed_loop_episodes, heldout_episodes=list(heldout),
        validation_episodes=list(validation), eval_seed=seed,
    )


def write_trial(output_dir: Path, spec: TrialSpec, evaluations: dict[str, list[dict]],
                losses=(1.0, 0.6, 0.4, 0.3)) -> Path:
    """A finished trial folder: trial.json, loss.csv (none for an evaluation-only trial),
    eval/<name>_metrics.json for each evaluation's rows, and DONE.json pointing at them."""
    tdir = Path(output_dir) / spec.stage / spec.name
    (tdir / "eval").mkdir(parents=True)
    (tdir / "trial.json").write_text(json.dumps(spec.to_dict(), indent=2))
    if spec.steps:
        lines = ["step,loss,lr,attempt"] + [f"{2 * (i + 1)},{loss},0.001,1" for i, loss in enumerate(losses)]
        (tdir / "loss.csv").write_text("\n".join(lines) + "\n")
    done_evals = {}
    for name, rows in evaluations.items():
        agg = summarize(rows) if name == "closed_loop" else aggregate(rows)
        metrics = Path("eval") / f"{name}_metrics.json"
        (tdir / metrics).write_text(json.dumps({"aggregate": agg, "episodes": rows}))
        done_evals[name] = {"status": "ok", "metrics": str(metrics), "log": f"eval/{name}.log"}
    done = {"trial": spec.key, "stage": spec.stage, "name": spec.name, "label": spec.label, "steps": spec.steps,
            "early": False, "evaluations": done_evals, "attempts": 1}
    (tdir / DONE_FILE).write_text(json.dumps(done, indent=2))
    return tdir


def plan_raw(stages: dict, evaluation: dict, seeds: list[int], heldout: int, validation: int) -> dict:
    """A plan as parsed from TOML (what plan.json holds under "plan")."""
    return {
        "name": "hand-made",
        "seeds": list(seeds),
        "dataset": {"repo_id": "test/hand_made", "heldout_episodes": heldout, "validation_episodes": validation},
        "train": {"batch_size": 4},
        "policy": {"type": "act"},
        "evaluation": evaluation,
        "stages": stages,
    }


def write_plan_json(output_dir: Path, raw: dict) -> None:
    """plan.json as the runner writes it (Plan.to_json)."""
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    (Path(output_dir) / "plan.json").write_text(json.dumps({"source": "hand-made.toml", "plan": raw}, indent=2))
