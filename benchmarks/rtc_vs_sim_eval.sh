#!/bin/bash
# The stock engine against the simulated timing at one latency: lerobot-rollout (RTC, so101_sim)
# with the policy's answer held back to LATENCY_MS, scored by actsmooth-score, and
# actsmooth-sim-eval at the same latency and request threshold, same checkpoint.
#   benchmarks/rtc_vs_sim_eval.sh CHECKPOINT OUT_DIR [LATENCY_MS=190] [QUEUE_THRESHOLD=8] [EPISODES=10]
# Run it on an idle machine: the rollout is real time.
set -euo pipefail
CKPT=${1:?usage: rtc_vs_sim_eval.sh CHECKPOINT OUT_DIR [LATENCY_MS] [QUEUE_THRESHOLD] [EPISODES]}
OUT=${2:?usage: rtc_vs_sim_eval.sh CHECKPOINT OUT_DIR [LATENCY_MS] [QUEUE_THRESHOLD] [EPISODES]}
LATENCY_MS=${3:-190}
THRESHOLD=${4:-8}
EPISODES=${5:-10}
VENV=$(dirname "$0")/../.venv/bin
if [ -e "$OUT" ]; then echo "error: $OUT exists: pass a new folder (nothing was started)" >&2; exit 2; fi
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
ACTSMOOTH_RTC_LATENCY_MS=$LATENCY_MS ACTSMOOTH_CHUNK_LOG=$OUT/chunks.jsonl "$VENV/lerobot-rollout" \
  --robot.type=so101_sim --robot.seed=0 --policy.path="$CKPT" --inference.type=rtc \
  --inference.queue_threshold="$THRESHOLD" --strategy.type=episodic --dataset.repo_id=local/rollout_rtc \
  --dataset.root="$OUT/data" --dataset.single_task="Pick up the cube and place it on the target." \
  --dataset.num_episodes="$EPISODES" --dataset.episode_time_s=15 --dataset.reset_time_s=1 --dataset.video=false \
  --dataset.push_to_hub=false --fps=30 --device=cpu --play_sounds=false --return_to_initial_position=false \
  > "$OUT/rollout.log" 2>&1
"$VENV/actsmooth-score" --dataset.root="$OUT/data" --chunk_log="$OUT/chunks.jsonl" --output="$OUT/score" > "$OUT/score.log" 2>&1
"$VENV/actsmooth-sim-eval" --policy.path="$CKPT" --episodes="$EPISODES" --seed=0 --latency_ms="$LATENCY_MS" \
  --threshold="$THRESHOLD" --max_steps=450 --plots=false --output="$OUT/sim_eval" > "$OUT/sim_eval.log" 2>&1
echo "rollout: $OUT/score_results.txt; sim-eval: $OUT/sim_eval_results.txt; chunk log: $OUT/chunks.jsonl"
