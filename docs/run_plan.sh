#!/usr/bin/env bash
# The run plan at the top of docs/RESULTS.md, in two single-thread lanes. From the repository root:
#
#   bash docs/run_plan.sh            # start both lanes in the background; logs in multirun/plan_lane{1,2}.log
#   bash docs/run_plan.sh status     # every job of the plan: done, started (has last.ckpt) or to do
#   bash docs/run_plan.sh lane 1     # run lane 1 in the foreground
#   bash docs/run_plan.sh stop       # stop both lanes (a stopped job resumes where it was on the next start)
#   git add -f $(bash docs/run_plan.sh files)   # the small result files of the finished jobs, to commit
#
# Each lane runs its presets' jobs (python -m benchmarks.plan jobs PRESET [key=value ...] ...) one after the other, in
# the folder `python train.py -m experiment=PRESET` would use (multirun/<preset>/<overrides>). A job whose folder
# holds results.json and episodes.json is skipped; an unfinished one resumes from its last.ckpt (ckpt_path=auto).
# Every finished job appends "folder, seconds, exit status" to multirun/plan_runs.tsv.
# PYTHON picks the interpreter (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

# Each lane in order of priority (docs/RESULTS.md, "Run plan"): stage 1 with the head-to-head first (the Table 1
# comparison and the layer profile, 3 seeds each), then the core sweeps; stage 2, 5 shots and widths; stage 3, second
# seeds of the sweeps whose verdicts hinge on small differences. The lanes take about equal times.
LANE1=(
  omniglot/h2h omniglot/h2h_methods algo=anil omniglot/sweep omniglot/h2h_mask_lr omniglot/sweep_inner_lr
  omniglot/sweep_5shot
  omniglot/sweep seed=1 omniglot/sweep_5shot seed=1
)
LANE2=(
  omniglot/h2h_methods algo=fomaml omniglot/h2h_meta_sgd omniglot/sweep_init_sparsity omniglot/sweep_inner_steps
  omniglot/sweep_width
  omniglot/sweep_inner_steps seed=1
)

lane_entries() { if [[ $1 == 1 ]]; then echo "${LANE1[@]}"; else echo "${LANE2[@]}"; fi; }

jobs_of() {  # "folder overrides..." for every job of lane $1
  # shellcheck disable=SC2046  # entries are preset names and key=value overrides, split on spaces
  "$PY" -m benchmarks.plan jobs $(lane_entries "$1")
}

state() {
  if [[ -f $1/results.json && -f $1/episodes.json ]]; then echo done
  elif [[ -f $1/checkpoints/last.ckpt ]]; then echo started
  else echo "to do"; fi
}

run_lane() {
  local jobs line folder start status
  mapfile -t jobs < <(jobs_of "$1")
  for line in "${jobs[@]}"; do
    read -r folder overrides <<< "$line"
    if [[ $(state "$folder") == done ]]; then echo "done already: $folder"; continue; fi
    mkdir -p "$folder"
    echo "$(date '+%F %T') start $folder"
    start=$SECONDS
    status=0
    # shellcheck disable=SC2086
    OMP_NUM_THREADS=1 "$PY" train.py $overrides "hydra.run.dir=\"$folder\"" ckpt_path=auto \
      < /dev/null >> "$folder/train.out" 2>&1 || status=$?
    printf '%s\t%s\t%s\n' "$folder" "$((SECONDS - start))" "$status" >> multirun/plan_runs.tsv
    echo "$(date '+%F %T') end $folder: $((SECONDS - start)) s, exit status $status"
  done
}

mkdir -p multirun
case "${1:-start}" in
  start)
    for lane in 1 2; do
      setsid nohup bash "$0" lane "$lane" > "multirun/plan_lane$lane.log" 2>&1 < /dev/null &
      echo $! > "multirun/plan_lane$lane.pid"
      echo "lane $lane: pid $!, log multirun/plan_lane$lane.log"
    done ;;
  lane) run_lane "$2" ;;
  status)
    for lane in 1 2; do
      while read -r folder _; do echo "lane $lane | $(state "$folder") | $folder"; done < <(jobs_of "$lane")
    done ;;
  files)
    for lane in 1 2; do
      while read -r folder _; do
        if [[ $(state "$folder") == done ]]; then
          ls "$folder"/{results.json,episodes.json,history.json,.hydra/config.yaml,.hydra/overrides.yaml} 2> /dev/null || true
        fi
      done < <(jobs_of "$lane")
    done ;;
  stop)
    for lane in 1 2; do
      if [[ -f multirun/plan_lane$lane.pid ]]; then kill -- "-$(cat "multirun/plan_lane$lane.pid")" || true; fi
    done ;;
  *) echo "usage: bash docs/run_plan.sh [start|status|files|lane 1|lane 2|stop]" >&2; exit 2 ;;
esac
