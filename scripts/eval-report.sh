#!/usr/bin/env bash
# Regenerates the committed evaluation reports under docs/eval/ (numbers and plots, no audio):
#   scripts/eval-report.sh
# It installs the data tools, builds the held-out TEST split of the standard separation and
# classification builds (fixed seeds; the same items a full build puts in test), and evaluates
# every available system on them. About 20-30 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
./run.sh setup
scripts/install-data-tools.sh
NN=".venv/bin/noisyneuron"
DATA="${NOISYNEURON_EVAL_DATA:-data/eval}"
SEP_HOURS="${SEP_HOURS:-2}"     # the plan whose test split is evaluated (10 % of it: 24 tracks of 30 s)
CLS_HOURS="${CLS_HOURS:-2}"     # 10 % of it: 180 clips of 4 s
$NN data build separation --out "$DATA/separation" --hours "$SEP_HOURS" --seed 2026 --splits test
$NN data build classification --out "$DATA/classification" --hours "$CLS_HOURS" --seed 2026 --splits test
$NN eval separation --data "$DATA/separation" --split test --out docs/eval --record-quality
$NN eval classifier --data "$DATA/classification" --split test --out docs/eval
echo "eval-report: wrote docs/eval/" >&2
