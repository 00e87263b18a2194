"""Closed-loop evaluation in the real simulator, driven by stand-in predictors.

The stand-ins replace a trained ChunkPredictor (lerobot_policy_act_smooth.inference) with
known output, so the timeline and the files can be checked by hand; the simulator, metrics
and file writers are the real ones. The end-to-end run with a trained checkpoint is in
test_closed_loop_e2e.py.
"""

import json

import numpy as np
import pytest

from lerobot_policy_act_smooth.evaluation.closed_loop import (
    PolicyPathConfig,
    SimEvalConfig,
    SimEvalError,
    output_paths,
    plot_path,
    run_sim_eval,
)

STATE = "observation.state"
ENV_STATE = "observation.environment_state"


class RampPredictor:
    """Stand-in for an act_smooth ChunkPredictor (C=6, K=2, D=2): every chunk continues the last
    committed action with a constant step of 0.3 deg/frame per joint; logs every call."""

    policy_type = "act_smooth"
    past_length = 2
    max_delay = 2
    chunk_size = 6
    n_action_steps = 6
    action_dim = 6
    use_action_relative = False

    def __init__(self, input_features=None):
        self.input_features = input_features or {STATE: (6,), ENV_STATE: (10,)}
        self.calls = []

    def predict(self, observation, past_actions, committed_actions):
        assert past_actions.ndim == 3 and committed_actions.ndim == 3
        self.calls.append(
            {k: np.array(v) for k, v in observation.items()} | {"past": past_actions.copy(), "committed": committed_actions.copy()}
        )
        last = committed_actions[:, -1]
        return last[:, None, :] + 0.3 * np.arange(1, self.chunk_size + 1)[None, :, None]


class BackToBackActPredictor(RampPredictor):
    """Stand-in for LeRobot's act (no prefix): each chunk ramps up from the observed state."""

    policy_type = "act"
    past_length = 0
    max_delay = 0
    n_action_steps = 4

    def predict(self, observation, past_actions, committed_actions):
        assert past_actions.shape[1] == 0 and committed_actions.shape[1] == 0
        self.calls.append({"past": past_actions, "committed": committed_actions})
        state = observation[STATE]
        return state[:, None, :] + 0.3 * np.arange(1, self.chunk_size + 1)[None, :, None]


def config(tmp_path, name="run", **kwargs):
    base = dict(policy=PolicyPathConfig(path="stand-in"), episodes=1, seed=5, output=str(tmp_path / name), max_steps=20, plots=False)
    base.update(kwargs)
    return SimEvalConfig(**base)


def trajectories(stem):
    return (output_paths(stem)["trajectories"]).read_text()


def stored(stem):
    return json.loads(output_paths(stem)["json"].read_text())


@pytest.mark.parametrize(
    ("latency_ms", "expected"),
    [
        # (request frame, committed frames, switch frame, past frames), derived by hand for C=6, K=2
        ("35", [(0, [0, 1], 2, []), (6, [6, 7], 8, [4, 5]), (12, [12, 13], 14, [10, 11]), (18, [18, 19], 20, [16, 17])]),
        ("10", [(0, [0], 1, []), (6, [6], 7, [4, 5]), (12, [12], 13, [10, 11]), (18, [18], 19, [16, 17])]),
    ],
)
def test_timeline_in_the_simulator_matches_hand_derivation(tmp_path, latency_ms, expected):
    predictor = RampPredictor()
    out = run_sim_eval(config(tmp_path, latency_ms=latency_ms), predictor=predictor)
    ep = out["episodes"][0]
    got = [(r["request_frame"], r["committed_frames"], r["switch_frame"], r["past_frames"]) for r in ep["requests"]]
    assert got == expected
    assert ep["switch_frames"] == [r[2] for r in expected if r[2] < 20]
    assert ep["boundaries"] == ep["switch_frames"][1:]
    assert out["settings"]["committed_actions"] == len(expected[0][1])

    # What the policy was given is what the robot saw and did at those frames.
    rows = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()[1:]]
    commanded = np.array([float(r[3]) for r in rows]).reshape(20, 6)
    observed = np.array([float(r[4]) for r in rows]).reshape(20, 6)
    for call, (t, committed, _, past) in zip(predictor.calls, expected):
        np.testing.assert_allclose(call[STATE][0], observed[t], rtol=0, atol=1e-5)
        np.testing.assert_allclose(call["committed"][0], commanded[committed], atol=1e-5)
        np.testing.assert_allclose(call["past"][0].reshape(-1, 6), commanded[past].reshape(-1, 6), atol=1e-5)
    # First chunk: the robot holds its measured start position while it is computed.
    np.testing.assert_allclose(commanded[0], observed[0], atol=1e-5)
    assert predictor.calls[0]["past"].shape == (1, 0, 6)


def test_act_runs_back_to_back_synchronously(tmp_path):
    predictor = BackToBackActPredictor()
    out = run_sim_eval(config(tmp_path, threshold=3), predictor=predictor)
    ep = out["episodes"][0]
    assert [r["request_frame"] for r in ep["requests"]] == [0, 4, 8, 12, 16]
    assert all(r["committed_frames"] == [] and r["switch_frame"] == r["request_frame"] for r in ep["requests"])
    assert ep["boundaries"] == [4, 8, 12, 16]
    assert out["settings"]["committed_actions"] == 0 and out["settings"]["latency_ms"] is None


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    # Compared as stored: NaN entries (profile offsets no switch reaches) are equal there.
    a, b, c = (
        run_sim_eval(config(tmp_path, name, episodes=2, seed=seed), predictor=RampPredictor()) and stored(tmp_path / name)
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    )
    assert a["episodes"] == b["episodes"] and a["aggregate"] == b["aggregate"]
    assert trajectories(tmp_path / "a") == trajectories(tmp_path / "b")
    assert a["aggregate"]["obs_U_a_mean"] != c["aggregate"]["obs_U_a_mean"]
    # Episode i uses seed S + i.
    assert [e["seed"] for e in a["episodes"]] == [5, 6]
    assert a["episodes"][1]["obs_U_a"] == c["episodes"][0]["obs_U_a"]


def test_writes_every_file_and_the_json_matches_the_text(tmp_path):
    out = run_sim_eval(config(tmp_path, episodes=2, max_steps=12, plots=True), predictor=RampPredictor())
    paths = output_paths(tmp_path / "run")
    for p in [*paths.values(), plot_path(tmp_path / "run", 0), plot_path(tmp_path / "run", 1)]:
        assert p.is_file() and p.stat().st_size > 0, p
    assert plot_path(tmp_path / "run", 0).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stored = json.loads(paths["json"].read_text())
    agg = stored["aggregate"]
    for key in ("obs_U_a_mean", "action_U_a_mean", "spike_mean", "success_rate"):
        assert key in agg
    assert agg["spike_mean"] == agg["obs_spike_mean"]
    assert stored["run"]["seed"] == 5 and "git_commit" in stored["run"] and stored["run"]["packages"]
    text = paths["results"].read_text()
    assert f"U_a={agg['obs_U_a_mean']:.6g} +- " in text
    assert f"U_a={stored['episodes'][0]['action_U_a']:.6g}" in text
    assert "  Observed   U_v=" in text and "  Spike Commanded " in text and "Predicted" not in text
    assert f"Success rate {agg['success_rate']:.6g} ({agg['num_successes']}/2)" in text
    csv_lines = paths["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("episode,seed,obs_U_v") and [ln.split(",")[0] for ln in csv_lines[1:]] == ["0", "1", "mean", "std"]
    success_column = csv_lines[0].split(",").index("success")
    assert float(csv_lines[3].split(",")[success_column]) == agg["success_rate"]  # the mean row
    # The trajectories CSV holds every frame: the metric can be recomputed from it.
    rows = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()[1:] if line.startswith("0,")]
    observed = np.array([float(r[4]) for r in rows]).reshape(12, 6)
    a = np.diff(observed, n=2, axis=0)
    assert np.max(np.var(a, axis=0, ddof=1)) == pytest.approx(stored["episodes"][0]["obs_U_a"], rel=1e-9)


def test_camera_policy_gets_rendered_images_of_its_size(tmp_path):
    predictor = RampPredictor({STATE: (6,), "observation.images.top": (3, 24, 32)})
    out = run_sim_eval(config(tmp_path, max_steps=8), predictor=predictor)
    image = predictor.calls[0]["observation.images.top"]
    assert image.shape == (1, 3, 24, 32) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0
    assert out["settings"]["cameras"] == {"top": [24, 32]} or out["settings"]["cameras"] == {"top": (24, 32)}


def test_latency_beyond_D_runs_with_the_oldest_committed_action_as_past(tmp_path):
    # 100 ms at 30 fps commits d = 3 actions; the stand-in was trained for D = 2 (C = 6, K = 2).
    # Hand-derived: frame t's committed action t joins the past, t+1 .. t+2 are committed, and
    # the chunk takes over at t + 3.
    predictor = RampPredictor()
    out = run_sim_eval(config(tmp_path, latency_ms="100"), predictor=predictor)
    ep = out["episodes"][0]
    got = [(r["request_frame"], r["committed_frames"], r["switch_frame"], r["past_frames"]) for r in ep["requests"]]
    assert got == [(0, [1, 2], 3, [0]), (6, [7, 8], 9, [5, 6]), (12, [13, 14], 15, [11, 12]),
                   (18, [19, 20], 21, [17, 18])]
    assert out["settings"]["committed_actions"] == 3 and out["settings"]["stale_frames"] == 1
    rows = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()[1:]]
    commanded = np.array([float(r[3]) for r in rows]).reshape(20, 6)
    for call, (_, committed, _, past) in zip(predictor.calls[:3], got):
        np.testing.assert_allclose(call["committed"][0], commanded[committed], atol=1e-5)
        np.testing.assert_allclose(call["past"][0], commanded[past], atol=1e-5)


def test_latency_beyond_the_chunk_names_the_largest_latency_and_writes_nothing(tmp_path):
    with pytest.raises(SimEvalError, match=r"d=8 .* chunk size C=6.* largest latency this policy can run at is 200\.0 ms"):
        run_sim_eval(config(tmp_path, latency_ms="250"), predictor=RampPredictor())
    assert not any(tmp_path.iterdir())


def test_synchronous_act_holds_for_the_latency_in_frames(tmp_path):
    # 67 ms at 30 fps: h = ceil(2.01) = 3 frames held per chunk, then n_action_steps = 4 executed.
    out = run_sim_eval(config(tmp_path, latency_ms="67", sync_hold=True), predictor=BackToBackActPredictor())
    ep = out["episodes"][0]
    assert [(r["request_frame"], r["switch_frame"]) for r in ep["requests"]] == [(0, 3), (7, 10), (14, 17)]
    assert out["settings"]["sync_hold_frames"] == 3 and out["settings"]["latency_ms"] == 67.0
    rows = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()[1:]]
    commanded = np.array([float(r[3]) for r in rows]).reshape(20, 6)
    observed = np.array([float(r[4]) for r in rows]).reshape(20, 6)
    np.testing.assert_allclose(commanded[0:3], np.tile(observed[0], (3, 1)), atol=1e-5)  # holds where it stands
    np.testing.assert_array_equal(commanded[7:10], np.tile(commanded[6], (3, 1)))  # holds its last action
    np.testing.assert_array_equal(commanded[14:17], np.tile(commanded[13], (3, 1)))


def test_ema_filter_sends_the_filtered_commands_and_keeps_the_policys_prefix(tmp_path):
    from lerobot_policy_act_smooth.evaluation.post_filter import ema_velocity_clip

    # The ramp stand-in's chunks depend only on its prefix, so the unfiltered commands are the
    # same in both runs: the filtered run must have sent exactly their filtered sequence.
    plain = RampPredictor()
    run_sim_eval(config(tmp_path, "plain"), predictor=plain)
    filtered = RampPredictor()
    out = run_sim_eval(config(tmp_path, "ema", ema_alpha=0.25, ema_max_delta=0.2), predictor=filtered)

    def commanded(name):
        rows = [line.split(",") for line in trajectories(tmp_path / name).splitlines()[1:]]
        return np.array([float(r[3]) for r in rows]).reshape(20, 6)

    raw = commanded("plain")
    np.testing.assert_allclose(commanded("ema"), ema_velocity_clip(raw, 0.25, 0.2), atol=1e-5)
    assert np.abs(np.diff(commanded("ema"), axis=0)).max() <= 0.2 + 1e-5
    for a, b in zip(plain.calls, filtered.calls):
        np.testing.assert_array_equal(a["committed"], b["committed"])
    assert out["settings"]["ema_alpha"] == 0.25


@pytest.mark.parametrize(("kwargs", "message"), [(dict(ema_alpha=0.0), "alpha must be in"),
                                                 (dict(ema_alpha=1.5), "alpha must be in"),
                                                 (dict(ema_alpha=0.25, ema_max_delta=-1.0), "velocity clip"),
                                                 (dict(latency_ms="-5"), "finite number >= 0")])
def test_bad_latency_or_filter_is_refused_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises(SimEvalError, match=message):
        run_sim_eval(config(tmp_path, **kwargs), predictor=RampPredictor())
    assert not any(tmp_path.iterdir())


def test_blending_sends_the_crossfade_of_the_old_and_the_new_chunk(tmp_path):
    # 35 ms -> d = 2, L = 2: requests at 4 actions left; frames switch, switch + 1 send
    # (1 - w) old + w new with w = 1/3, 2/3 (C = 6, so the old chunk's last 2 actions are blended).
    out = run_sim_eval(config(tmp_path, blend_frames=2), predictor=RampPredictor())
    ep = out["episodes"][0]
    assert out["settings"]["blend_frames"] == 2 and out["settings"]["threshold"] == 4
    assert [(r["request_frame"], r["switch_frame"], r["blended_frames"]) for r in ep["requests"]] == [
        (0, 2, 0), (4, 6, 2), (8, 10, 2), (12, 14, 2), (16, 18, 2)]
    rows = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()[1:]]
    commanded = np.array([float(r[3]) for r in rows]).reshape(20, 6)
    with np.load(output_paths(tmp_path / "run")["chunks"]) as stored_chunks:
        chunks, starts = stored_chunks["ep0_chunks"], stored_chunks["ep0_starts"].tolist()
    for r in range(1, len(starts)):
        for i, w in enumerate((1 / 3, 2 / 3)):
            frame = starts[r] + i
            expected = (1 - w) * chunks[r - 1][frame - starts[r - 1]] + w * chunks[r][i]
            np.testing.assert_allclose(commanded[frame], expected, atol=1e-4)


@pytest.mark.parametrize(("kwargs", "message"), [(dict(blend_frames=2, threshold=4), "leave --threshold unset"),
                                                 (dict(blend_frames=5), "chunks of at least d \\+ L = 7"),
                                                 (dict(blend_frames=-1), "whole number of frames")])
def test_bad_blending_is_refused_before_anything_runs(tmp_path, kwargs, message):
    with pytest.raises(SimEvalError, match=message):
        run_sim_eval(config(tmp_path, **kwargs), predictor=RampPredictor())
    assert not any(tmp_path.iterdir())
    with pytest.raises(SimEvalError, match="--blend_frames is for act_smooth"):
        run_sim_eval(config(tmp_path, blend_frames=2), predictor=BackToBackActPredictor())


@pytest.mark.parametrize("threshold", [1, 7])
def test_threshold_out_of_range(tmp_path, threshold):
    with pytest.raises(SimEvalError, match="threshold"):
        run_sim_eval(config(tmp_path, threshold=threshold), predictor=RampPredictor())


def test_policy_features_the_simulator_lacks_are_named(tmp_path):
    predictor = RampPredictor({STATE: (6,), ENV_STATE: (4,), "observation.velocity": (6,)})
    with pytest.raises(SimEvalError, match=r"observation\.velocity.*environment_state \(policy \(4,\), environment \(10,\)\)"):
        run_sim_eval(config(tmp_path), predictor=predictor)
    with pytest.raises(SimEvalError, match="unknown camera 'side'"):
        run_sim_eval(config(tmp_path), predictor=RampPredictor({STATE: (6,), "observation.images.side": (3, 24, 32)}))


def test_bad_numbers_and_earlier_results_are_kept(tmp_path):
    with pytest.raises(SimEvalError, match="--episodes"):
        run_sim_eval(config(tmp_path, episodes=0), predictor=RampPredictor())
    with pytest.raises(SimEvalError, match="latency_ms"):
        run_sim_eval(config(tmp_path, latency_ms="fast"), predictor=RampPredictor())
    run_sim_eval(config(tmp_path, max_steps=6), predictor=RampPredictor())
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(SimEvalError, match="earlier run exist"):
        run_sim_eval(config(tmp_path, max_steps=9), predictor=RampPredictor())
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    run_sim_eval(config(tmp_path, max_steps=9, overwrite=True), predictor=RampPredictor())
    assert json.loads(output_paths(tmp_path / "run")["json"].read_text())["episodes"][0]["num_frames"] == 9


def test_cli_rejects_a_missing_checkpoint(tmp_path, capsys):
    from lerobot_policy_act_smooth.evaluation.sim_eval_cli import main

    rc = main([f"--policy.path={tmp_path / 'nope'}", f"--output={tmp_path / 'x'}"])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


class DemonstrationOracle:
    """Stand-in for a perfect policy: returns the scripted demonstrator's recorded actions for
    the frames the chunk covers (reading the frame from the simulator's step counter)."""

    chunk_size = 6
    action_dim = 6
    use_action_relative = False
    input_features = {STATE: (6,), ENV_STATE: (10,)}

    def __init__(self, env, actions, policy_type):
        self.env, self.actions, self.policy_type = env, actions, policy_type
        self.past_length, self.max_delay, self.n_action_steps = (2, 2, 6) if policy_type == "act_smooth" else (0, 0, 6)

    def predict(self, observation, past_actions, committed_actions):
        start = self.env.steps + committed_actions.shape[1]
        idx = np.minimum(np.arange(start, start + self.chunk_size), len(self.actions) - 1)
        return self.actions[idx][None]


@pytest.mark.parametrize("policy_type", ["act", "act_smooth"])
def test_demonstrator_actions_through_the_loop_succeed(tmp_path, policy_type):
    from lerobot_policy_act_smooth.sim.dataset import record_demonstration
    from lerobot_policy_act_smooth.sim.env import SO101JointEnv

    seed = 11
    env = SO101JointEnv()
    demo = record_demonstration(env, seed=seed)
    assert demo.success
    oracle = DemonstrationOracle(env, demo.actions, policy_type)
    out = run_sim_eval(
        config(tmp_path, seed=seed, max_steps=None), predictor=oracle, env_factory=lambda cameras, max_steps, seed: env
    )
    ep = out["episodes"][0]
    assert ep["success"] and ep["terminated"] and out["aggregate"]["success_rate"] == 1.0
    rows = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()[1:]]
    num_frames = ep["num_frames"]
    commanded = np.array([float(r[3]) for r in rows]).reshape(num_frames, 6)
    observed = np.array([float(r[4]) for r in rows]).reshape(num_frames, 6)
    if policy_type == "act":
        # Chunks back to back replay the demonstration exactly: same actions, same observations.
        np.testing.assert_array_equal(commanded, demo.actions[:num_frames])
        np.testing.assert_array_equal(observed, demo.states[:num_frames])
    else:
        # The first d=2 frames hold the start position, then every frame gets the demonstration's action.
        np.testing.assert_array_equal(commanded[2:], demo.actions[2:num_frames])
        np.testing.assert_allclose(commanded[:2], np.tile(demo.states[0], (2, 1)), atol=1e-6)


def test_measured_latency_is_timed_and_picks_d(tmp_path):
    class SlowRamp(RampPredictor):
        """A stand-in whose predict takes a little over 36 ms: d = 2 up to 66.7 ms."""

        def predict(self, observation, past_actions, committed_actions):
            import time

            time.sleep(0.036)
            return super().predict(observation, past_actions, committed_actions)

    out = run_sim_eval(config(tmp_path, latency_ms="measured", max_steps=8), predictor=SlowRamp())
    measured = out["settings"]["latency_measured_ms"]
    assert 36.0 <= measured < 66.6 and out["settings"]["latency_ms"] == measured
    assert out["settings"]["committed_actions"] == 2


# -- the issue-17 measures and the demonstrator on the same scenes ------------------------------

SCALARS = ("spike_transition", "sparc", "ldlj")
PROFILES = ("profile_acc", "profile_jerk")


def test_new_measures_are_in_every_file_and_finite_on_a_short_run(tmp_path):
    # threshold 4 > d = 2: each chunk's last 2 actions overlap the next chunk, so the replan is defined.
    out = run_sim_eval(config(tmp_path, max_steps=48, threshold=4), predictor=RampPredictor())
    ep, agg = stored(tmp_path / "run")["episodes"][0], out["aggregate"]
    for prefix in ("obs_", "action_", "demo_obs_", "demo_action_"):
        for key in SCALARS:
            assert np.isfinite(ep[prefix + key]) and np.isfinite(agg[f"{prefix}{key}_mean"]), prefix + key
        for key in PROFILES:
            assert len(ep[prefix + key]) == 31 and np.isfinite(ep[prefix + key]).all(), prefix + key
    assert ep["obs_sparc"] <= 0 and np.isfinite(ep["replan_mean"]) and np.isfinite(ep["replan_max"])
    # The profile is the mean |second difference| at each offset from the switches, here by hand.
    observed = np.array([[float(v) for v in line.split(",")[4:5]] for line in trajectories(tmp_path / "run").splitlines()[1:]]).reshape(48, 6)
    acc = np.abs(np.diff(observed, n=2, axis=0)).mean(axis=1)  # row i labelled frame i + 2
    at_zero = [acc[b - 2] for b in ep["boundaries"]]  # every boundary 6..46 reaches offset 0
    assert ep["obs_profile_acc"][15] == pytest.approx(np.mean(at_zero), rel=1e-12)
    # Scalars only in the CSV and the text; the profiles are lists in the JSON alone.
    header = output_paths(tmp_path / "run")["csv"].read_text().splitlines()[0].split(",")
    assert {"obs_sparc", "action_ldlj", "replan_max", "demo_action_spike_transition", "demo_success"} <= set(header)
    assert not any("profile" in column for column in header)
    text = output_paths(tmp_path / "run")["results"].read_text()
    assert f"replan_max = {ep['replan_max']:.6g}" in text and "  Spike Demo cmd " in text


class SteppedChunks(RampPredictor):
    """Stand-in whose k-th request returns the constant chunk 0.5 k^2 deg on every joint: at the
    switch from chunk k to k+1 the plan jumps by 0.5 (2k + 1) deg wherever both cover a frame."""

    def predict(self, observation, past_actions, committed_actions):
        self.calls.append({})
        k = len(self.calls) - 1
        return np.full((1, self.chunk_size, self.action_dim), 0.5 * k**2, dtype=np.float32)


@pytest.mark.parametrize(
    ("max_steps", "expected_mean", "expected_max"),
    [
        # C=6, d=2, threshold=4: requests at 0, 4, 8, 12, 16, switches 2, 6, 10, 14, 18, each chunk
        # overlapping the next on 2 frames. 20 frames: jumps 0.5, 1.5, 2.5, 3.5 -> mean 2.0, max 3.5.
        (20, 2.0, 3.5),
        # 17 frames: the request at 16 switches at 18, after the end; it is left out: 0.5, 1.5, 2.5.
        (17, 1.5, 2.5),
    ],
)
def test_replan_discontinuity_of_known_jumps(tmp_path, max_steps, expected_mean, expected_max):
    out = run_sim_eval(config(tmp_path, max_steps=max_steps, threshold=4), predictor=SteppedChunks())
    ep = out["episodes"][0]
    assert [r["switch_frame"] for r in ep["requests"]] == [2, 6, 10, 14, 18]
    assert ep["replan_mean"] == pytest.approx(expected_mean, abs=1e-12)
    assert ep["replan_max"] == pytest.approx(expected_max, abs=1e-12)
    # The raw chunks are kept for rescoring: every request's, with the frame it starts at.
    with np.load(output_paths(tmp_path / "run")["chunks"]) as chunks:
        assert chunks["ep0_starts"].tolist() == [2, 6, 10, 14, 18]
        assert chunks["ep0_chunks"].shape == (5, 6, 6)
        assert chunks["ep0_chunks"][:, 0, 0].tolist() == [0.0, 0.5, 2.0, 4.5, 8.0]
    assert stored(tmp_path / "run")["files"]["chunks"] == str(output_paths(tmp_path / "run")["chunks"])


@pytest.mark.parametrize("policy_type", ["act", "act_smooth"])
def test_replan_is_nan_for_chunks_back_to_back(tmp_path, policy_type):
    predictor = SteppedChunks()
    predictor.policy_type = policy_type
    if policy_type == "act":
        predictor.past_length = predictor.max_delay = 0
    # act: n_action_steps = C; act_smooth: threshold = d. No chunk shares a frame with the next.
    ep = run_sim_eval(config(tmp_path, max_steps=20), predictor=predictor)["episodes"][0]
    assert len(ep["requests"]) >= 3
    assert np.isnan(ep["replan_mean"]) and np.isnan(ep["replan_max"])


def test_the_demonstrator_runs_the_policys_scenes(tmp_path, capsys):
    from lerobot_policy_act_smooth.sim.dataset import record_demonstration
    from lerobot_policy_act_smooth.sim.env import SO101JointEnv

    # A camera policy: the demonstrator runs in a second env, without cameras.
    predictor = RampPredictor({STATE: (6,), "observation.images.top": (3, 24, 32)})
    out = run_sim_eval(config(tmp_path, episodes=2, max_steps=40), predictor=predictor)
    result = stored(tmp_path / "run")
    env = SO101JointEnv()
    scenes = []
    for ep in result["episodes"]:
        observation, _ = env.reset(seed=ep["seed"])
        scene = observation[ENV_STATE].tolist()
        assert ep["initial_environment_state"] == scene and ep["demo_initial_environment_state"] == scene
        scenes.append(scene)
        # The dataset's demonstrator on that seed, run here independently, is the reference.
        demo = record_demonstration(env, seed=ep["seed"])
        assert ep["demo_num_frames"] == len(demo.actions) and ep["demo_success"] == demo.success
        assert ep["demo_boundaries"] == [b for b in ep["boundaries"] if b < len(demo.actions)]
        a = np.diff(demo.actions.astype(np.float64), n=2, axis=0)
        assert ep["demo_action_U_a"] == pytest.approx(np.max(np.var(a, axis=0, ddof=1)), rel=1e-12)
    assert scenes[0] != scenes[1]  # seeds 5 and 6: two different scenes
    assert out["aggregate"]["demo_success_rate"] == np.mean([ep["demo_success"] for ep in result["episodes"]])
    assert f"(ceiling {out['aggregate']['demo_success_rate']:.2f})" in capsys.readouterr().err

    # The reference file has the trajectories' columns and starts where the policy's episode started.
    reference = [line.split(",") for line in output_paths(tmp_path / "run")["reference_trajectories"].read_text().splitlines()]
    policy = [line.split(",") for line in trajectories(tmp_path / "run").splitlines()]
    assert reference[0] == policy[0]
    assert [r[4] for r in reference[1:7]] == [r[4] for r in policy[1:7]]  # episode 0, frame 0, observed joints
    assert {r[5] for r in reference[1:]} == {"-1"}
    episode_0 = [r for r in reference[1:] if r[0] == "0"]
    assert len(episode_0) == 6 * result["episodes"][0]["demo_num_frames"]
    assert sorted({int(r[1]) for r in episode_0 if r[6] == "1"}) == result["episodes"][0]["demo_boundaries"]
    assert "Demonstrator on the same scenes (ceiling): success rate" in output_paths(tmp_path / "run")["results"].read_text()


def test_reference_false_leaves_the_demonstrator_out(tmp_path):
    out = run_sim_eval(config(tmp_path, reference=False), predictor=RampPredictor())
    assert not any(k.startswith("demo_") for k in [*out["aggregate"], *out["episodes"][0]])
    assert not output_paths(tmp_path / "run")["reference_trajectories"].exists()
    assert "reference_trajectories" not in out["files"] and out["settings"]["reference"] is None
    assert "Demo" not in output_paths(tmp_path / "run")["results"].read_text()


def test_a_reference_flag_that_is_not_a_yes_or_no_is_refused(tmp_path, capsys):
    with pytest.raises(SimEvalError, match="--reference must be true or false"):
        run_sim_eval(config(tmp_path, reference="no"), predictor=RampPredictor())
    from lerobot_policy_act_smooth.evaluation.sim_eval_cli import main

    assert main([f"--policy.path={tmp_path}", f"--output={tmp_path / 'x'}", "--reference=perhaps"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not any(tmp_path.iterdir())
