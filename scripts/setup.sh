# shellcheck shell=bash
# Sets up a checkout on a fresh Debian, Ubuntu or Raspberry Pi OS machine: the OS
# packages the project needs, then a virtual environment in .venv with the project
# installed. Sourced by scripts/demo and scripts/test; safe to run again and again.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"

say() { printf 'poradovnik: %s\n' "$*" >&2; }

# Installs the named Debian packages when any is missing, as root or through sudo.
need_debs() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    say "missing OS packages: ${missing[*]}; install them with your package manager and run again"
    exit 1
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      say "missing OS packages: ${missing[*]}"
      say "run as root: apt-get update && apt-get install -y ${missing[*]}"
      exit 1
    fi
  fi
  say "installing OS packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

check_python() {
  if ! command -v python3 >/dev/null; then
    say "python3 is missing: install Python 3.11 or newer"
    exit 1
  fi
  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    say "Python 3.11 or newer is needed; this is $(python3 --version 2>&1)"
    exit 1
  fi
  # Debian splits venv and ensurepip out of python3 itself.
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    need_debs python3-venv
  fi
}

# Creates .venv and installs the project with the given extras, again only when
# pyproject.toml changed since the last install.
setup_venv() {
  local extras=$1 stamp="$VENV/.installed"
  local want
  want="$extras $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment in .venv"
    python3 -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing the project and its dependencies ($extras)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "${ROOT}[$extras]"
    printf '%s' "$want" >"$stamp"
  fi
}
