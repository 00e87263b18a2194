"""A stage's outcome, read from its trials' files: each trial's metrics, the stage's variants as
selection candidates (seeds averaged), and the summary that stage.json holds (the winner and why).

The runner writes the summary when a stage finishes; the report recomputes it for a stage whose
stage.json is missing. Both read it from here, so neither imports the other for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..evaluation.metrics import aggregate
from .plan import Plan, TrialSpec
from .selection import Candidate, select_winner
from .trial import read_done, read_loss_csv, trial_dir


def trial_metrics(tdir: Path, replay_episodes: list[int] | None = None) -> dict[str, float]:
    """{"gt_prefix.U_a_mean": ..., "closed_loop.obs_U_a_mean": ...} from a trial's eval files.

    replay_episodes: average the replay metrics over these episodes only (the validation
    episodes, for selection); None: the files' own aggregate over every evaluated episode."""
    done = read_done(tdir) or {}
    out = {}
    for name, ev in done.get("evaluations", {}).items():
        if ev.get("status") == "ok" and ev.get("metrics"):
            try:
                payload = json.loads((tdir / ev["metrics"]).read_text())
            except (OSError, json.JSONDecodeError):
                continue
            agg = payload.get("aggregate", {})
            if replay_episodes and name != "closed_loop":
                chosen = set(replay_episodes)
                agg = aggregate([row for row in payload.get("episodes", []) if row.get("episode") in chosen])
            for k, v in agg.items():
                if isinstance(v, (int, float)):
                    out[f"{name}.{k}"] = float(v)
    return out


def variant_candidates(specs: list[TrialSpec], output_dir: Path) -> list[Candidate]:
    """One candidate per variant, its seeds averaged: the loss curve step by step (over the steps
    every seed logged), each metric over the seeds (replay metrics on the validation episodes)."""
    by_variant: dict[str, list[TrialSpec]] = {}
    for s in specs:
        by_variant.setdefault(s.variant_key, []).append(s)
    cands = []
    for key, seeds in by_variant.items():
        curves = [[r["loss"] for r in read_loss_csv(trial_dir(output_dir, s))] for s in seeds]
        n = min(len(c) for c in curves)
        losses = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
        per_seed = [trial_metrics(trial_dir(output_dir, s), s.validation_episodes or None) for s in seeds]
        names = set.intersection(*(set(m) for m in per_seed))
        metrics = {k: sum(m[k] for m in per_seed) / len(per_seed) for k in names}
        cands.append(Candidate(key, losses, metrics))
    return cands


def stage_summary(plan: Plan, stage_name: str, specs: list[TrialSpec], output_dir: Path) -> dict:
    st = plan.stages[stage_name]
    if not st.trains:
        # An evaluation-only stage passes on the checkpoints it evaluated.
        return {"stage": stage_name, "winner": specs[0].variant_key, "rule": "evaluation only", "final_losses": {},
                "diverged": {}, "note": ""}
    cands = variant_candidates(specs, output_dir)
    sel = select_winner(cands, st.select, plan.final_loss_window, plan.divergence_factor,
                        from_scratch=st.init_from is None)
    values = {c.name: (c.metrics or {}).get(st.select) for c in cands} if st.select != "final_loss" else {}
    validation = specs[0].validation_episodes
    return {"stage": stage_name, "winner": sel.winner, "rule": sel.rule_used, "final_losses": sel.final_losses,
            "metric_values": values, "seeds": sorted({s.seed for s in specs if s.seed is not None}),
            "selected_on_episodes": (validation if validation else specs[0].heldout_episodes)
            if st.select != "final_loss" else [],
            "diverged": sel.diverged, "note": sel.note, "final_loss_window": plan.final_loss_window,
            "divergence_factor": plan.divergence_factor}
