#!/usr/bin/env bash
# One training part in one device call: train in the foreground until a deadline, then copy the run's
# metrics and its last checkpoint (shards under 16 MiB) to $OUT so that they come back before the call ends.
#
#   DEADLINE=$(( $(date +%s) + 540 )) RATE=560 bash training/gpu_chunk.sh CONFIG RUN BANK [TRAINER ARGS...]
#
# CONFIG   the training config (its photo_folder must be runs/photo-textures)
# RUN      the run folder (runs/...); a second part passes --init-from RUN_A/checkpoints/step-N
# BANK     photo-texture bank folder, copied to runs/photo-textures
# DEADLINE epoch seconds by which everything must be written; RATE pairs per second the trainer reaches
#          once compiled (about 560 on one H200 with the bundled configs); STARTUP seconds of start and
#          compiling before the first step (default 100; about 150 on a fresh machine)
# REAL_SFM optional SfM state folder (docs/real-data.md): its dense stage is built into runs/real-dataset
#          first (or resumed), for configs that read that generic dataset
# The schedule's length (--steps) is sized to the time left, rounded down to a checkpoint (500 steps).
# Set DEADLINE from the call's real limit: when less device time is left than the command's timeout, the call
# is cut at what is left (limit_s) and nothing reaches $OUT.
set -euo pipefail
config=$1 run=$2 bank=$3
shift 3
: "${DEADLINE:?epoch seconds}" "${RATE:?pairs per second}" "${OUT:?output folder}"
startup=${STARTUP:-100}
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1

# The bank, and the real scenes' dense stage (resumed: scenes built by an earlier call on this machine are kept).
bash "$(dirname "$0")/gpu_background.sh" setup "$bank" "${REAL_SFM:-}"
if [ -n "${REAL_SFM:-}" ]; then
  cp runs/real-dataset/splits.json "$OUT/"
fi

batch=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["data"]["batch_size"])' "$config")
left=$(( DEADLINE - $(date +%s) - startup - 30 ))
steps=$(( left * RATE / batch / 500 * 500 ))
echo "training $steps steps of $batch pairs ($left s at $RATE pairs/s)"
timeout $(( DEADLINE - $(date +%s) - 20 )) python3 -m pointmap.train.trainer "$config" "$run" --quiet --steps "$steps" "$@" \
  || echo "trainer stopped: exit $?"

cp "$run/metrics.csv" "$OUT/"
last=$(ls -d "$run"/checkpoints/step-* | tail -n 1)
echo "last checkpoint: $last"
cp "$last"/* "$OUT/"
