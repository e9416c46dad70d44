#!/usr/bin/env bash
# Regenerates the committed evaluation reports under docs/eval/ (numbers and plots, no audio):
#   scripts/eval-report.sh               both reports
#   scripts/eval-report.sh classifier    only the classifier report (a few minutes)
#   scripts/eval-report.sh separation    only the separation report
# It installs the data tools, builds the held-out TEST split of the standard separation and
# classification builds (fixed seeds; the same items a full build puts in test), and evaluates
# every available system on them. About 20-30 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
./run.sh setup
scripts/install-data-tools.sh
NN=".venv/bin/noisyneuron"
DATA="${NOISYNEURON_EVAL_DATA:-data/eval}"
SEP_HOURS="${SEP_HOURS:-4}"     # the plan whose test split is evaluated (10 % of it: 48 tracks of 30 s)
CLS_HOURS="${CLS_HOURS:-6}"     # 10 % of it: about 570 clips of 4 s (290 of held-out real recordings)
WHAT="${1:-all}"
case "$WHAT" in all|classifier|separation) ;; *) echo "usage: $0 [all|classifier|separation]" >&2; exit 2 ;; esac
if [ "$WHAT" != classifier ]; then
  $NN data build separation --out "$DATA/separation-${SEP_HOURS}h" --hours "$SEP_HOURS" --seed 2026 --splits test
  # the synthetic split (our own generators: reported beside, never chosen by)
  $NN eval separation --data "$DATA/separation-${SEP_HOURS}h" --split test --out docs/eval/synthetic
  # the real-world set (held-out voices, held-out recordings, no generator): the published figures
  # and --chain karaoke's choice
  $NN data build realworld --out "$DATA/realworld" --tracks 40 --seed 2026
  $NN eval separation --data "$DATA/realworld" --split test --out docs/eval/realworld --record-quality
fi
if [ "$WHAT" != separation ]; then
  # the classification plan changed with builder v3 (real recorded noise, real speakers held out by
  # package and speaker, mixtures): an older build is made again
  if [ -f "$DATA/classification/manifest.json" ] && ! grep -q '"builder": "classification-v3"' "$DATA/classification/manifest.json"; then
    rm -rf "$DATA/classification"
  fi
  $NN data build classification --out "$DATA/classification" --hours "$CLS_HOURS" --seed 2026 --splits test
  $NN eval classifier --data "$DATA/classification" --split test --out docs/eval --record-quality
fi
echo "eval-report: wrote docs/eval/" >&2
