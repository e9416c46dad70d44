#!/usr/bin/env bash
# NoisyNeuron in one command.
#   ./run.sh          set everything up, then run live karaoke on the default audio devices
#                     (no audio device here? it renders the bundled demo through the same chain
#                     into noisyneuron-demo-karaoke.wav and says so)
#   ./run.sh test     set everything up, then run the test suite (starts a JACK dummy server)
#   ./run.sh setup    set up only
# Set-up is idempotent: system libraries (apt, when missing), .venv, the package and its test tools.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${NOISYNEURON_VENV:-.venv}"
PY="${PYTHON:-python3}"

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null; then
  have_pkg libportaudio2 || need_apt+=(libportaudio2)
  have_pkg libsndfile1 || need_apt+=(libsndfile1)
  # JACK gives a clocked audio server where there is no sound card or sound server (and the tests need it)
  if [ "${1:-}" = "test" ] || { [ -z "$(ls /dev/snd/pcm* 2>/dev/null)" ] && ! command -v pipewire >/dev/null && ! command -v pulseaudio >/dev/null; }; then
    command -v jackd >/dev/null || need_apt+=(jackd2)
  fi
  [ "${1:-}" = "test" ] && { command -v tmux >/dev/null || need_apt+=(tmux); }
  if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "run.sh: installing system packages: ${need_apt[*]}" >&2
    echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "run.sh: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.noisyneuron-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "run.sh: installing NoisyNeuron and its dependencies into $VENV (1-2 minutes the first time)" >&2
  # torch first and pinned: an unpinned torch would pull several GB of CUDA builds
  "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.13.0
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
fi

case "${1:-live}" in
  setup) echo "run.sh: ready; run $VENV/bin/noisyneuron --help" >&2 ;;
  test)
    shift
    # the data builders and evaluation are tested on the real tools and sources (about 2.5 min once)
    scripts/install-data-tools.sh
    # the tests start their own JACK dummy server (tests/conftest.py) and fail if jackd is missing
    NOISYNEURON_REQUIRE_JACK=1 exec "$VENV/bin/python" -m pytest "$@"
    ;;
  live) shift || true; exec "$VENV/bin/noisyneuron" live --chain karaoke "$@" ;;
  *) exec "$VENV/bin/noisyneuron" "$@" ;;
esac
