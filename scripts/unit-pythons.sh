#!/usr/bin/env bash
# Run tests/unit under each Python version given (e.g. 3.9 3.13), each in a
# venv of its own (.venv-py3.9, ...) with only the `test` extra.
#
# The agent runs on the targets' own Python, from 3.9 (Debian 11, RHEL 9) to
# the newest (Debian 13: 3.13), so its unit tests run at both ends too. An
# interpreter is looked for on PATH, then under pyenv's versions (newest patch
# release first); on Debian or Ubuntu as root a missing one is installed with
# apt-get when the release packages it (python3.9 on Debian 11, python3.13 on
# Debian 13). Nothing else can bring one here: uv and pbs-installer download
# CPython builds from outside the package registries, and Debian 12 packages
# 3.11 only. A version still missing fails the run when CI is set (a skipped
# interpreter would hide that the agent no longer runs there) and is skipped
# with a warning otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

# The interpreter for version $1, if one runs here.
find_python() {
  local v=$1 cand
  local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
  for cand in "$(command -v "python$v" 2>/dev/null || true)" \
      $(ls -d "$pyenv_root"/versions/"$v".*/bin/"python$v" 2>/dev/null | sort -rV); do
    [ -n "$cand" ] || continue
    # A pyenv shim on PATH exists for versions it does not select: ask it.
    if "$cand" -c "import sys, venv, ensurepip; sys.exit(sys.version_info[:2] != tuple(map(int, '$v'.split('.'))))" \
        >/dev/null 2>&1; then
      echo "$cand"
      return 0
    fi
  done
  return 1
}

# Install python$1 and its venv module from the distribution, where it has them.
install_python() {
  local v=$1
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  apt-get update -qq >/dev/null 2>&1 || true
  apt-cache show "python$v-venv" >/dev/null 2>&1 || return 1
  echo "installing python$v from the distribution"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "python$v" "python$v-venv" >/dev/null
}

# The venv .venv-py$1 for interpreter $2, with the `test` extra.
prepare_venv() {
  local venv=.venv-py$1 python=$2
  # Rebuilt when the project's dependencies change, as .venv is.
  if [ ! -e "$venv/.test-installed" ] || [ pyproject.toml -nt "$venv/.test-installed" ]; then
    # Chained: called under ||, where set -e does not stop at a failed step.
    rm -rf "$venv" && "$python" -m venv "$venv" \
      && "$venv/bin/pip" install -q --upgrade pip \
      && "$venv/bin/pip" install -q -e '.[test]' \
      && touch "$venv/.test-installed"
  fi
}

run_unit() {
  local venv=.venv-py$1
  echo "=== unit tests under $("$venv/bin/python" --version) ($2)"
  "$venv/bin/python" -m pytest -p no:cacheprovider -q tests/unit
}

default=$(${PYTHON:-python3} -c 'import sys; print("%d.%d" % sys.version_info[:2])')
status=0
for v in "$@"; do
  if [ "$v" = "$default" ]; then
    echo "=== Python $v is the default one: make unit-default runs its unit tests"
    continue
  fi
  python=$(find_python "$v") || { install_python "$v" && python=$(find_python "$v"); } || python=
  if [ -z "$python" ]; then
    message="no Python $v here (looked on PATH and under ${PYENV_ROOT:-$HOME/.pyenv}/versions;"
    message+=" the distribution packages none): install it, e.g. with pyenv, to run the unit tests under it"
    if [ -n "${CI:-}" ]; then
      echo "unit-pythons: $message" >&2
      status=1
      continue
    fi
    echo "unit-pythons: WARNING, skipped: $message" >&2
    continue
  fi
  # One after the other: the MISC_CHECK tests count the processes their
  # scripts leave, and would count another suite's too.
  prepare_venv "$v" "$python" || { echo "unit-pythons: no venv for Python $v" >&2; status=1; continue; }
  run_unit "$v" "$python" || status=1
done
exit $status
