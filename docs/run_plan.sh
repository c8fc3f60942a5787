#!/usr/bin/env bash
# The run plan at the top of docs/RESULTS.md: one `python train.py -m` sweep per entry below, its jobs side by side on
# every core (hydra/launcher=parallel, one thread a job), each job in results/omniglot/<preset>/<overrides>/ (the
# evidence docs/RESULTS.md reads; git add results/ takes its small files, .gitignore the rest). From the repository
# root:
#
#   bash docs/run_plan.sh                      # the whole plan, entry after entry; run again, it skips and resumes
#   bash docs/run_plan.sh run omniglot/h2h     # the entries of these presets only
#   bash docs/run_plan.sh status               # every job of the plan: done, started (has last.ckpt) or to do
#   bash docs/run_plan.sh entries              # the plan's entries, one a line
#   JOBS=4 bash docs/run_plan.sh               # at most 4 jobs at a time (default: one per core)
#
# Every sweep runs with ckpt_path=auto skip_finished=true: a job whose folder holds results.json and episodes.json
# is not trained again, a started one resumes from its last.ckpt. Each sweep appends "folder and overrides, seconds,
# exit status" to results/omniglot/plan_runs.tsv. PYTHON picks the interpreter (default: python); RESULTS the folder
# the presets' results go under (default: results, which gives results/omniglot/<preset>).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RESULTS=${RESULTS:-results}
SWEEP_DIR="$RESULTS/\${task_name}"  # task_name: the preset's name, omniglot/<preset>

# In order of priority (docs/RESULTS.md, "Run plan"): stage 1 with the head-to-head first (the Table 1 comparison
# and the layer profile, 3 seeds each), then the core sweeps; stage 2, 5 shots and widths; stage 3, second seeds of
# the sweeps whose verdicts hinge on small differences; stage 4, fair baselines (ANIL's inner lr and steps,
# Meta-SGD's initial step sizes, chosen on validation; ANIL chose the grid's lowest lr, so one point below it, lr
# 0.01 at 25 steps, checks the edge; Meta-SGD chose a constant 0.1) and the head-to-head against them (500
# validation episodes), each method at its choice; stage 5, seeds 1 and 2 of every sweep arm and of its reference
# arm, so that a seed-level test decides each sweep verdict (the arms at lr 1.0 first), then the 20-way base with
# rotated copies of its training classes as new classes (validation and test unchanged, so the runs pair with the
# base's), and, as they removed its early validation peak, the 20-way K sweep with them. An entry is a preset and
# key=value overrides of its sweep (key=a,b sweeps them); an override of a key the sweep's algo adds names the algo
# too (Hydra composes the command line alone before it sweeps).
PLAN=(
  "omniglot/h2h" "omniglot/h2h_methods" "omniglot/h2h_meta_sgd" "omniglot/h2h_mask_lr"
  "omniglot/sweep" "omniglot/sweep_inner_steps" "omniglot/sweep_inner_lr" "omniglot/sweep_init_sparsity"
  "omniglot/sweep_5shot" "omniglot/sweep_width"
  "omniglot/sweep seed=1" "omniglot/sweep_5shot seed=1" "omniglot/sweep_inner_steps seed=1"
  "omniglot/tune_anil" "omniglot/tune_anil algo.inner_lr=0.01 algo.inner_steps=25"
  "omniglot/tune_meta_sgd" "omniglot/tune_meta_sgd algo=meta_sgd algo.m_init=uniform algo.inner_lr=0.1"
  "omniglot/h2h_tuned" "omniglot/h2h_tuned algo=fomaml algo.inner_lr=0.03"
  "omniglot/h2h_tuned algo=anil algo.inner_lr=0.03 algo.inner_steps=25"
  "omniglot/h2h_tuned algo=meta_sgd algo.first_order=false algo.inner_steps=1 algo.m_init=constant algo.inner_lr=0.1"
  "omniglot/sweep seed=2" "omniglot/sweep_inner_lr algo.inner_lr=1.0 seed=1,2"
  "omniglot/sweep_init_sparsity algo.mask_init_sparsity=0.9 seed=1,2"
  "omniglot/sweep_inner_lr algo.inner_lr=0.03,0.3 seed=1,2"
  "omniglot/sweep_init_sparsity algo.mask_init_sparsity=0.25,0.75 seed=1,2" "omniglot/sweep_width seed=1,2"
  "omniglot/sweep_5shot seed=2" "omniglot/sweep_inner_steps seed=2"
  "omniglot/sweep_inner_steps algo.inner_steps=5 data.train_rotations=true seed=0"
  "omniglot/sweep_inner_steps algo.inner_steps=25 data.train_rotations=true seed=0"
  "omniglot/sweep_inner_steps data.train_rotations=true seed=1,2"
)

entries() {  # the plan's entries, or those of the presets named in "$@"
  local entry
  for entry in "${PLAN[@]}"; do
    if [[ $# == 0 || " $* " == *" ${entry%% *} "* ]]; then echo "$entry"; fi
  done
}

state() {
  if [[ -f $1/results.json && -f $1/episodes.json ]]; then echo done
  elif [[ -f $1/checkpoints/last.ckpt ]]; then echo started
  else echo "to do"; fi
}

run() {
  local entry preset overrides start status
  mkdir -p "$RESULTS/omniglot"
  while read -r entry; do
    read -r preset overrides <<< "$entry"
    echo "$(date '+%F %T') start $entry"
    start=$SECONDS
    status=0
    # shellcheck disable=SC2086  # overrides are key=value words
    "$PY" train.py -m hydra/launcher=parallel "hydra.launcher.n_jobs=${JOBS:--1}" "experiment=$preset" $overrides \
      "hydra.sweep.dir=$SWEEP_DIR" ckpt_path=auto skip_finished=true < /dev/null || status=$?
    printf '%s\t%s\t%s\n' "$RESULTS/$entry" "$((SECONDS - start))" "$status" >> "$RESULTS/omniglot/plan_runs.tsv"
    echo "$(date '+%F %T') end $entry: $((SECONDS - start)) s, exit status $status"
  done < <(entries "$@")
}

case "${1:-run}" in
  run) shift $(($# > 0)); run "$@" ;;
  entries) shift; entries "$@" ;;
  status)
    shift
    # shellcheck disable=SC2046  # entries are preset names and key=value overrides, split on spaces
    while read -r folder _; do echo "$(state "$folder") | $folder"; done < <(
      "$PY" -m benchmarks.plan jobs --sweep-dir "$SWEEP_DIR" $(entries "$@")
    ) ;;
  *) echo "usage: bash docs/run_plan.sh [run [PRESET ...]|status [PRESET ...]|entries [PRESET ...]]" >&2; exit 2 ;;
esac
