"""Train-step time and single-chunk inference latency: act_smooth (K=4, D=2) vs LeRobot's act.

Both policies get identical sizes (dim_model, layers, chunk, cameras, batch); measurements of the two
are interleaved so that background load hits both alike. Prints a table; --output also writes the
figures (JSON, atomically) with a run.json next to them.

--methods adds act_smooth variants with one training-only smoothing method each (docs/policy.md),
timed in the same interleaved loop and reported against plain act_smooth:
sampled (train_delays=sampled), dct / bspline (chunk_basis, --basis-size coefficients),
perturb (p_prefix_perturb=--p), own (p_prefix_own=--p), join (prefix_join_horizon=10),
d10 / d15 (trained for 333 / 500 ms of latency: length_prefix_future=10 / 15, sampled delays).

    .venv/bin/python benchmarks/bench_policy.py                # both configs
    .venv/bin/python benchmarks/bench_policy.py --configs lowdim --steps 5
    .venv/bin/python benchmarks/bench_policy.py --configs lowdim --dim-model 64 --n-heads 4 \
        --dim-feedforward 256 --n-encoder-layers 2 --batch-size 16 --threads 1 --steps 40 \
        --methods sampled dct bspline perturb own join # the low-dimensional CPU profile
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lerobot.configs import FeatureType, PolicyFeature
from lerobot.policies.act import ACTConfig, ACTPolicy

from lerobot_policy_act_smooth.configuration_act_smooth import ACTSmoothConfig
from lerobot_policy_act_smooth.modeling_act_smooth import ACTSmoothPolicy

ACTION_DIM = 6
METHODS = ("sampled", "dct", "bspline", "perturb", "own", "join", "d10", "d15")


def method_overrides(method: str, args) -> dict:
    """act_smooth config fields that switch on one smoothing method."""
    return {
        "sampled": {"train_delays": "sampled"},
        "dct": {"chunk_basis": "dct", "chunk_basis_size": args.basis_size},
        "bspline": {"chunk_basis": "bspline", "chunk_basis_size": args.basis_size},
        "perturb": {"p_prefix_perturb": args.p},
        "own": {"p_prefix_own": args.p},
        "join": {"prefix_join_horizon": min(10, args.chunk_size)},
        "d10": {"length_prefix_future": 10, "train_delays": "sampled"},
        "d15": {"length_prefix_future": 15, "train_delays": "sampled"},
    }[method]


def features(config_name: str) -> dict[str, PolicyFeature]:
    inputs = {"observation.state": PolicyFeature(type=FeatureType.STATE, shape=(6,))}
    if config_name == "lowdim":
        inputs["observation.environment_state"] = PolicyFeature(type=FeatureType.ENV, shape=(10,))
    else:  # two small cameras, as the plan's two SO-101 cameras scaled down to 96x128
        inputs["observation.images.wrist"] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, 128, 96))
        inputs["observation.images.top"] = PolicyFeature(type=FeatureType.VISUAL, shape=(3, 96, 128))
    return inputs


def make_policies(config_name: str, args) -> dict[str, torch.nn.Module]:
    common = dict(
        device="cpu",
        chunk_size=args.chunk_size,
        n_action_steps=args.chunk_size,
        dim_model=args.dim_model,
        dim_feedforward=args.dim_feedforward,
        n_heads=args.n_heads,
        n_encoder_layers=args.n_encoder_layers,
        n_decoder_layers=args.n_decoder_layers,
        use_vae=False,
        dropout=0.1,
        pretrained_backbone_weights=None,
        input_features=features(config_name),
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))},
    )
    torch.manual_seed(0)
    policies = {"act": ACTPolicy(ACTConfig(**common))}
    for name in ["act_smooth", *args.methods]:
        overrides = {} if name == "act_smooth" else method_overrides(name, args)
        torch.manual_seed(0)
        config = ACTSmoothConfig(**{"length_prefix_past": 4, "length_prefix_future": 2, **overrides}, **common)
        policies[name] = ACTSmoothPolicy(config)
    return policies


def make_batch(policy, batch_size: int) -> dict[str, torch.Tensor]:
    cfg = policy.config
    window = len(cfg.action_delta_indices)
    frames = () if cfg.observation_delta_indices is None else (len(cfg.observation_delta_indices),)
    batch = {key: torch.randn(batch_size, *frames, *ft.shape) for key, ft in cfg.input_features.items()}
    batch["action"] = torch.randn(batch_size, window, ACTION_DIM)
    batch["action_is_pad"] = torch.zeros(batch_size, window, dtype=torch.bool)
    return batch


def train_step(policy, optimizer, batch) -> float:
    start = time.perf_counter()
    policy.train()
    loss, _ = policy.forward(batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def infer(policy, obs) -> float:
    start = time.perf_counter()
    policy.reset()
    policy.predict_action_chunk(obs)
    return time.perf_counter() - start


def bench(config_name: str, args) -> dict:
    policies = make_policies(config_name, args)
    batches = {name: make_batch(p, args.batch_size) for name, p in policies.items()}
    optimizers = {name: torch.optim.AdamW(p.get_optim_params(), lr=1e-5) for name, p in policies.items()}
    step_times = {name: [] for name in policies}
    for i in range(args.warmup + args.steps):
        for name, policy in policies.items():
            elapsed = train_step(policy, optimizers[name], batches[name])
            if i >= args.warmup:
                step_times[name].append(elapsed)
        print(f"  [{config_name}] train step {i + 1}/{args.warmup + args.steps}", flush=True)

    obs = {k: v[:1] for k, v in make_batch(policies["act"], 1).items() if k.startswith("observation")}
    latencies = {name: [] for name in policies}
    for i in range(3 + args.inference_reps):
        for name, policy in policies.items():
            policy.eval()
            elapsed = infer(policy, obs)
            if i >= 3:
                latencies[name].append(elapsed)
    result = {"config": config_name}
    for name in policies:
        result[name] = {
            "train_step_s_median": statistics.median(step_times[name]),
            "inference_ms_median": 1000 * statistics.median(latencies[name]),
            "inference_ms_p90": 1000 * float(np.percentile(latencies[name], 90)),
            "params_m": sum(p.numel() for p in policies[name].parameters()) / 1e6,
        }
    result["train_step_ratio"] = (
        result["act_smooth"]["train_step_s_median"] / result["act"]["train_step_s_median"]
    )
    for method in args.methods:  # cost of each method against plain act_smooth, same run
        result[method]["train_step_vs_act_smooth"] = (
            result[method]["train_step_s_median"] / result["act_smooth"]["train_step_s_median"]
        )
    return result


def method_label(method: str, args) -> str:
    return ", ".join(f"{key}={value}" for key, value in method_overrides(method, args).items())


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs="+", default=["lowdim", "image"], choices=["lowdim", "image"])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=30)
    parser.add_argument("--dim-model", type=int, default=512)
    parser.add_argument("--dim-feedforward", type=int, default=3200)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--n-encoder-layers", type=int, default=4)
    parser.add_argument("--n-decoder-layers", type=int, default=1)
    parser.add_argument("--methods", nargs="*", default=[], choices=METHODS, help="act_smooth variants to time")
    parser.add_argument("--basis-size", type=int, default=8, help="coefficients of the dct/bspline head")
    parser.add_argument("--p", type=float, default=0.5, help="probability of the perturb/own prefix")
    parser.add_argument("--steps", type=int, default=10, help="timed train steps per policy")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--inference-reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", type=Path, default=None, help="write figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results = [bench(name, args) for name in args.configs]
    print(
        f"\nbatch {args.batch_size}, chunk {args.chunk_size}, dim {args.dim_model}/{args.dim_feedforward}, "
        f"{args.n_heads} heads, {args.n_encoder_layers} enc + {args.n_decoder_layers} dec layers, no VAE, "
        f"{args.threads} threads; act_smooth K=4, D=2"
    )
    header = (
        f"{'config':8} {'policy':11} {'params(M)':>9} {'train step (s)':>15} "
        f"{'infer median (ms)':>18} {'infer p90 (ms)':>15}"
    )
    print(header)
    for r in results:
        for name in ("act", "act_smooth", *args.methods):
            m = r[name]
            print(
                f"{r['config']:8} {name:11} {m['params_m']:9.2f} {m['train_step_s_median']:15.3f} "
                f"{m['inference_ms_median']:18.1f} {m['inference_ms_p90']:15.1f}"
            )
        print(f"{r['config']:8} act_smooth / act train step: {r['train_step_ratio']:.2f}x (target <= 1.10x)")
        for method in args.methods:
            ratio = r[method]["train_step_vs_act_smooth"]
            print(f"{r['config']:8} {method} / act_smooth train step: {ratio:.2f}x ({method_label(method, args)})")
    if args.output is not None:
        from lerobot_policy_act_smooth.provenance import atomic_write_json, write_run_metadata

        atomic_write_json(args.output, results)
        write_run_metadata(args.output.with_name(args.output.stem + "_run.json"), vars(args), seed=0)


if __name__ == "__main__":
    main()
