"""Inference latency of act_smooth through the path LeRobot's RTC engine runs per chunk.

One call = what lerobot/rollout/inference/rtc.py does between reading the leftover and merging:
prepare_observation_for_inference -> preprocessor (split state, normalise) ->
predict_action_chunk(inference_delay, prev_chunk_left_over) -> postprocessor (un-normalise). The
observation is what so101_sim reports (state [17] = joints, cube/target, success flag; plus the
plan's two cameras with --images); the leftover is the previous chunk's tail, padded to the
engine's execution horizon, so the policy's leftover lookup is timed too. Weights are random and
the normalisation statistics synthetic: latency does not depend on them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_rtc_latency.py                   # CPU profile model
    .venv/bin/python benchmarks/bench_rtc_latency.py --profile full --device cuda --images  # the plan's model

Prints median / p90 / max in ms; --output also writes them (JSON, atomically) with run metadata.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.policies.utils import prepare_observation_for_inference
from lerobot.rollout.inference.rtc import _normalize_prev_actions_length

from lerobot_policy_act_smooth.configuration_act_smooth import ACTSmoothConfig
from lerobot_policy_act_smooth.modeling_act_smooth import ACTSmoothPolicy
from lerobot_policy_act_smooth.processor_act_smooth import make_act_smooth_pre_post_processors

# Model sizes: "cpu" = experiments/plans/cpu-small.toml, "full" = the research plan's (docs/policy.md).
PROFILES = {
    "cpu": dict(dim_model=64, n_heads=4, dim_feedforward=256, n_encoder_layers=2, n_decoder_layers=1),
    "full": dict(dim_model=512, n_heads=8, dim_feedforward=3200, n_encoder_layers=4, n_decoder_layers=1),
}
CAMERAS = {"observation.images.wrist": (3, 640, 480), "observation.images.top": (3, 480, 640)}


def build(profile: str, images: bool, device: str):
    inputs = {
        "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(6,)),
        "observation.environment_state": PolicyFeature(type=FeatureType.ENV, shape=(10,)),
    }
    if images:
        inputs.update({k: PolicyFeature(type=FeatureType.VISUAL, shape=s) for k, s in CAMERAS.items()})
    config = ACTSmoothConfig(
        device=device, chunk_size=30, n_action_steps=30, use_vae=False, length_prefix_past=4,
        length_prefix_future=2, pretrained_backbone_weights=None, input_features=inputs,
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(6,))}, **PROFILES[profile],
    )
    stats = {
        key: {"mean": np.zeros(ft.shape, np.float32), "std": np.ones(ft.shape, np.float32)}
        for key, ft in {**inputs, "action": config.output_features["action"]}.items()
    }
    torch.manual_seed(0)
    policy = ACTSmoothPolicy(config).to(device).eval()
    pre, post = make_act_smooth_pre_post_processors(config, stats)
    return policy, pre, post


def robot_observation(rng: np.random.Generator, images: bool) -> dict[str, np.ndarray]:
    obs = {"observation.state": rng.normal(size=17).astype(np.float32)}
    if images:
        for key, (c, h, w) in CAMERAS.items():
            obs[key] = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
    return obs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu")
    parser.add_argument("--images", action="store_true", help="add the plan's two cameras (480x640, 640x480)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--delay", type=int, default=1, help="inference_delay passed to the policy")
    parser.add_argument("--horizon", type=int, default=10, help="the engine's execution_horizon")
    parser.add_argument("--output", help="write the figures to this JSON file")
    args = parser.parse_args()
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be >= 1 and --warmup >= 0")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    policy, pre, post = build(args.profile, args.images, args.device)
    rng = np.random.default_rng(0)
    policy.reset()
    leftover = None
    times = []
    for i in range(args.warmup + args.calls):
        obs = robot_observation(rng, args.images)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            batch = pre(prepare_observation_for_inference(obs, device, "task", "so101_sim"))
            chunk = policy.predict_action_chunk(batch, inference_delay=args.delay, prev_chunk_left_over=leftover)
            actions = post(chunk)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed * 1000)
        # The engine keeps chunk[real_delay:] and has executed a few actions by the next call.
        leftover = _normalize_prev_actions_length(chunk[0, args.delay + 3 :], args.horizon)
        assert actions.shape[-1] == 6
    ms = np.asarray(times)
    figures = {
        "profile": args.profile, "images": args.images, "device": args.device, "threads": args.threads,
        "calls": args.calls, "median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
        "max_ms": float(ms.max()), "params_M": sum(p.numel() for p in policy.parameters()) / 1e6,
    }
    print(
        f"act_smooth {args.profile} ({figures['params_M']:.2f} M params{', 2 cameras' if args.images else ''}) "
        f"on {args.device}, {args.threads} thread(s), {args.calls} calls: median {figures['median_ms']:.2f} ms, "
        f"p90 {figures['p90_ms']:.2f} ms, max {figures['max_ms']:.2f} ms"
    )
    if args.output:
        from lerobot_policy_act_smooth.provenance import atomic_write_json, run_metadata

        atomic_write_json(args.output, {"figures": figures, "run": run_metadata(config=vars(args), seed=0)})


if __name__ == "__main__":
    main()
