"""Re-scoring an evaluation from its trajectory files gives back exactly what it wrote (replay with
a stand-in predictor on a tiny dataset, closed loop from hand-made episode records), and an
evaluation older than the chunks file is refused for the replan discontinuity with the fix."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.metrics import boundary_spike, replan_summary
from lerobot_policy_act_smooth.evaluation.replay_cli import ReplayConfig, run_replay
from lerobot_policy_act_smooth.evaluation.rescore import RescoreError, read_chunks_npz, rescore, rescore_replay
from replay_stand_ins import StandInPredictor

DATASET = "test/tiny_sim_state"
PROFILE_KEYS = ("profile_acc", "profile_jerk", "truth_profile_acc", "truth_profile_jerk")


def canonical(episodes: list[dict]) -> str:
    """Exact comparison that treats NaN as equal to NaN (json writes both as NaN)."""
    return json.dumps(episodes, sort_keys=True)


class BendingRamp(StandInPredictor):
    """The ramp stand-in plus a bend that depends on the observed state: chunks that accelerate
    and disagree with each other, as a policy's do."""

    def predict(self, observation, past_actions, committed_actions):
        ramp = super().predict(observation, past_actions, committed_actions)
        j = np.arange(1, self.chunk_size + 1)[None, :, None]
        state = np.asarray(observation["observation.state"], dtype=np.float64)[:, None, :]
        return ramp + 0.05 * np.sin(state) * j**2


def stand_in(bend: bool):
    # C = 8, advance 5: consecutive chunks share 3 frames; each chunk ramps away from its prefix.
    cls = BendingRamp if bend else StandInPredictor
    return cls("ramp", past_length=4, max_delay=2, chunk_size=8, n_action_steps=5, action_dim=6, step=0.5)


def replay(root, stem, mode="self_chaining", bend=True, **options):
    cfg = ReplayConfig(episodes="0,1,2", output=str(stem), mode=mode, plots=False, **options)
    cfg.dataset.repo_id, cfg.dataset.root = DATASET, str(root)
    return run_replay(cfg, predictor=stand_in(bend))


@pytest.mark.parametrize("mode, blend", [("self_chaining", False), ("gt_prefix", True)])
def test_rescoring_a_fresh_replay_reproduces_its_metrics_json_exactly(sim_state_dataset_root, tmp_path, mode, blend):
    stem = tmp_path / "run"
    payload = replay(sim_state_dataset_root, stem, mode, blend=blend)
    written = json.loads(Path(f"{stem}_metrics.json").read_text())
    assert written["files"]["chunks"] == f"{stem}_chunks.npz" and Path(f"{stem}_chunks.npz").is_file()
    again = rescore(f"{stem}_metrics.json")
    assert canonical(again) == canonical(written["episodes"]) == canonical(json.loads(json.dumps(payload["episodes"])))
    first = written["episodes"][0]
    for key in ("spike_transition", "sparc", "ldlj", "truth_sparc", "truth_ldlj", "replan_mean", "replan_max"):
        assert math.isfinite(first[key]), key
    assert all(len(first[k]) == 31 for k in PROFILE_KEYS)
    # the profiles are JSON-only: the CSV holds the scalars
    header = Path(f"{stem}_metrics.csv").read_text().splitlines()[0].split(",")
    assert "replan_max" in header and "sparc" in header and not any("profile" in k for k in header)


def test_replay_keeps_every_predicted_chunk_and_scores_the_replan_on_them(sim_state_dataset_root, tmp_path):
    stem = tmp_path / "run"
    payload = replay(sim_state_dataset_root, stem, bend=False)
    chunks, starts = read_chunks_npz(f"{stem}_chunks.npz")[1]
    assert starts == [t + 2 for t in range(4, 60 - 2 - 8, 5)]  # p_i = t_i + d, t_i = 4, 9, ... while t + D + C < 60
    assert all(c.shape == (8, 6) for c in chunks)
    # the ramp stand-in: chunk i = its last committed action + 0.5 (j + 1); self-chaining commits the
    # stitched frames, so chunk i's first action continues chunk i-1's frame p_i - 1 by 0.5
    np.testing.assert_allclose(chunks[1][0], chunks[0][4] + 0.5)
    # consecutive chunks share 3 frames, p_i + k (k = 0, 1, 2): the old chunk there is old[5 + k] =
    # old[4] + 0.5 (k + 1), the new one old[4] + 0.5 (k + 1) too: a plan that does not change
    assert payload["episodes"][1]["replan_max"] == pytest.approx(0.0, abs=1e-9)
    assert payload["episodes"][1]["replan_max"] == replan_summary(chunks, starts)["replan_max"]
    # with the ground-truth prefix every chunk restarts from the recorded action: the plan jumps by
    # |truth[p_i - 1] + 0.5 (k + 1) - old[5 + k]|, worked out here from the chunks themselves
    gt = replay(sim_state_dataset_root, tmp_path / "gt", "gt_prefix", bend=False)
    chunks, starts = read_chunks_npz(tmp_path / "gt_chunks.npz")[1]
    by_hand = max(float(np.max(np.abs(chunks[i][:3] - chunks[i - 1][5:]))) for i in range(1, len(chunks)))
    assert gt["episodes"][1]["replan_max"] == by_hand > 0.1


def test_back_to_back_chunks_have_no_replan_and_blending_scores_both_kinks(sim_state_dataset_root, tmp_path):
    whole = replay(sim_state_dataset_root, tmp_path / "whole", advance=8)
    assert all(math.isnan(e["replan_max"]) for e in whole["episodes"])  # advance = C: no shared frame

    stem = tmp_path / "blend"
    blended = replay(sim_state_dataset_root, stem, "gt_prefix", blend=True)
    from lerobot_policy_act_smooth.evaluation.rescore import read_stitched_csv

    stitched, _, switches = read_stitched_csv(f"{stem}_stitched.csv")[0]
    start = int(np.flatnonzero(~np.isnan(stitched).all(axis=1))[0])
    x = stitched[start:]
    rel = [b - start for b in switches]
    both = sorted(rel + [b + 3 for b in rel])  # L = C - advance = 3: the crossfade ends
    assert blended["episodes"][0]["spike"] == boundary_spike(x, both)["spike"]
    assert blended["episodes"][0]["spike"] != boundary_spike(x, rel)["spike"]
    assert "both ends of every crossfade" in Path(f"{stem}_results.txt").read_text()


def test_an_evaluation_older_than_the_chunks_file_is_refused_for_replan(sim_state_dataset_root, tmp_path):
    stem = tmp_path / "old"
    replay(sim_state_dataset_root, stem)
    metrics = Path(f"{stem}_metrics.json")
    old = json.loads(metrics.read_text())
    del old["files"]
    metrics.write_text(json.dumps(old))
    Path(f"{stem}_chunks.npz").unlink()
    before = metrics.read_bytes()
    with pytest.raises(RescoreError, match=r"was written before the chunks file existed .* re-run the evaluation"):
        rescore(metrics)
    assert metrics.read_bytes() == before
    without = rescore_replay(metrics, replan=False)
    expected = [{k: v for k, v in e.items() if not k.startswith("replan_")} for e in old["episodes"]]
    assert canonical(without) == canonical(expected)


def test_rescore_names_what_it_needs():
    with pytest.raises(RescoreError, match="STEM_metrics.json"):
        rescore("somewhere/run_results.txt")
    with pytest.raises(RescoreError, match="neither .*_stitched.csv nor .*_trajectories.csv"):
        rescore("nowhere/run_metrics.json")


def test_rescoring_a_closed_loop_run_reproduces_its_metrics_json(tmp_path):
    from lerobot_policy_act_smooth.evaluation.closed_loop_config import SimEvalConfig
    from lerobot_policy_act_smooth.evaluation.closed_loop_results import EpisodeRecord, write_results
    from lerobot_policy_act_smooth.sim.dataset import Demonstration

    rng = np.random.default_rng(5)
    records = []
    for episode, frames in ((0, 80), (1, 20)):  # episode 1 is shorter than the profile window
        commanded = np.cumsum(rng.normal(size=(frames, 6)), axis=0)
        observed = commanded + rng.normal(scale=0.1, size=commanded.shape)
        switch = list(range(0, frames, 10))
        padded = np.concatenate([commanded, np.repeat(commanded[-1:], 15, axis=0)])
        chunks = np.stack([padded[s : s + 15] for s in switch]) + rng.normal(scale=0.2, size=(len(switch), 15, 6))
        demo_actions = np.cumsum(rng.normal(size=(70, 6)), axis=0).astype(np.float32)
        reference = Demonstration(episode_seed=episode, success=True, actions=demo_actions,
                                  states=np.concatenate([observed[:1], demo_actions[1:]]).astype(np.float32),
                                  env_states=np.zeros((70, 10), np.float32))
        records.append(EpisodeRecord(
            episode=episode, seed=episode, commanded=commanded, observed=observed,
            source=[s // 10 for s in range(frames)], requests=[{"switch_frame": s} for s in switch],
            switch_frames=switch, boundaries=switch[1:], success=False, success_frame=None, terminated=False,
            truncated=True, predict_seconds=[0.0] * len(switch), chunks=chunks, reference=reference,
        ))
    # the observed first frame goes through float32 in the reference check: make it exact
    for rec in records:
        rec.observed[0] = rec.observed[0].astype(np.float32)
        rec.reference.states[0] = rec.observed[0]
    config = SimEvalConfig(output=str(tmp_path / "cl"), plots=False)
    payload = write_results(config, records, "closed loop", [], {"fps": 30.0}, {})
    again = {e["episode"]: e for e in rescore(tmp_path / "cl_metrics.json")}
    written = json.loads((tmp_path / "cl_metrics.json").read_text())["episodes"]
    assert len(again) == len(written) == len(payload["episodes"]) == 2
    for episode in written:
        recomputed = again[episode["episode"]]
        assert "replan_max" in recomputed and "demo_action_sparc" in recomputed and "obs_profile_acc" in recomputed
        assert canonical({k: episode[k] for k in recomputed}) == canonical(recomputed)
    assert math.isfinite(again[0]["replan_max"]) and all(math.isnan(v) for v in again[1]["action_profile_acc"])
