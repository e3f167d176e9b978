#!/usr/bin/env bash
# Training runs that outlive device calls: start trainers in the background on a warm machine, then poll them
# from the calls that follow (each within the machine's idle time), and copy a run's last checkpoint out.
# Several runs can share one GPU (a real-scene arm and its control, say).
#
#   bash training/gpu_background.sh setup BANK [REAL_SFM]       bank -> runs/photo-textures; SfM state's dense stage
#                                                               -> runs/real-dataset (on the GPU)
#   bash training/gpu_background.sh start STEPS CONFIG RUN [CONFIG RUN ...]   one trainer per run, detached
#   bash training/gpu_background.sh wait DEADLINE               until epoch second DEADLINE or every trainer ends
#   bash training/gpu_background.sh collect RUN...              metrics of each run, checkpoint of the first, to $OUT
#
# A trainer's log is RUN.log; STEPS is the schedule's length (--steps) of every run started.
# The machine goes back about 30 s after a call returns (status: idle_release_s), and with it the runs: a run that
# must outlive its call needs the next call within that time, so plan each part to end, checkpoint included, inside
# one call where the session cannot promise that. One call brings back one checkpoint of the bundled size (47 MB
# of the 64 MiB a call returns): collect the second run's in a call of its own, straight after.
# Session 11 lost a 512 run that way: the call that was to collect it came late and found a fresh machine. A run
# whose schedule ends after its call should be one you can afford to lose.
set -euo pipefail
export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
command=$1
shift

running() { pgrep -f "pointmap.train.trainer" > /dev/null; }

show() {  # the last logged row of each run
  for log in runs/*.log; do
    [ -e "$log" ] || continue
    run=${log%.log}
    echo "$run: $(tail -n 1 "$run/metrics.csv" 2>/dev/null || echo 'no rows yet') $(grep -c Traceback "$log" || true) tracebacks"
  done
}

case $command in
  setup)
    mkdir -p runs
    rm -rf runs/photo-textures
    cp -r "$1" runs/photo-textures
    if [ -n "${2:-}" ]; then
      python3 -m pointmap.data.real.build --stage dense --sfm-dir "$2" --out runs/real-dataset --device cuda \
        --quiet 2>&1 | { grep -v Warning || true; } | tail -n 25
    fi
    ;;
  start)
    steps=$1
    shift
    while [ $# -ge 2 ]; do
      config=$1 run=$2
      shift 2
      mkdir -p "$(dirname "$run")"
      setsid nohup python3 -m pointmap.train.trainer "$config" "$run" --quiet --steps "$steps" > "$run.log" 2>&1 &
      echo "started $run ($config, $steps steps)"
    done
    ;;
  wait)
    while running && [ "$(date +%s)" -lt "$1" ]; do
      sleep 20
    done
    show
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader || true
    ;;
  collect)
    : "${OUT:?output folder}"
    for run in "$@"; do
      cp "$run/metrics.csv" "$OUT/$(basename "$run")-metrics.csv"
    done
    last=$(ls -d "$1"/checkpoints/step-* | tail -n 1)
    echo "last checkpoint of $1: $last"
    cp "$last"/* "$OUT/"
    ;;
  *)
    echo "unknown command $command" >&2
    exit 2
    ;;
esac
