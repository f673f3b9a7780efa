#!/usr/bin/env bash
# Build the wheel, then install it the ways docs/install-plugin.md documents — `pipx install` and
# `uv tool install`, offline from a wheelhouse of its dependencies — each into throwaway directories,
# and run the installed plugin through the real kubectl with nothing else on PATH.
#
#   scripts/check_wheel_install.sh [KUBECTL]
#
# Needs network once, for `pip download` of the dependencies (cached in build/wheelhouse).
# pipx and uv come from PATH, else they are installed into build/venv.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python" ]] || python="$(command -v python3)"
base_python="$("$python" -c 'import sys; print(sys._base_executable)')"
kubectl="${1:-}"
if [[ -z "$kubectl" ]]; then
  if [[ -x "$root/.venv/bin/kubectl" ]]; then kubectl="$root/.venv/bin/kubectl"; else kubectl="$(command -v kubectl)"; fi
fi
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' kubectl_gpuscale/__init__.py)"
wheel="dist/kubectl_gpuscale-${version}-py3-none-any.whl"
fail() { echo "wheel-install: FAIL: $*" >&2; exit 1; }

rm -f "$wheel"
"$python" -m pip wheel -q --disable-pip-version-check --no-deps -w dist/ .
[[ -f "$wheel" ]] || fail "no $wheel after pip wheel"
rm -f build/wheelhouse/kubectl_gpuscale-*.whl  # a stale copy would stand in for the new wheel's dependencies
"$python" -m pip download -q --disable-pip-version-check -d build/wheelhouse "$wheel"

tools="$root/build/venv/bin"
if ! command -v pipx >/dev/null || ! command -v uv >/dev/null; then
  [[ -x "$tools/python" ]] || "$python" -m venv "$root/build/venv"
  [[ -x "$tools/pipx" && -x "$tools/uv" ]] || "$tools/python" -m pip install -q --disable-pip-version-check pipx uv
fi
pipx="$(command -v pipx || echo "$tools/pipx")"
uv="$(command -v uv || echo "$tools/uv")"

check() {  # $1: label, $2: bin dir the tool installed into, $3: home
  local env=(env -i PATH="$2:/usr/bin:/bin" HOME="$3" LANG=C.UTF-8)
  [[ -x "$2/kubectl-gpuscale" && -x "$2/kubectl_complete-gpuscale" ]] || fail "$1: console scripts missing in $2"
  out="$("${env[@]}" "$kubectl" gpuscale version)" || fail "$1: kubectl gpuscale version exited $?"
  grep -q "^kubectl-gpuscale ${version} " <<<"$out" || fail "$1: version printed '$out'"
  "${env[@]}" "$kubectl" plugin list 2>/dev/null | grep -q "$2/kubectl-gpuscale" || fail "$1: not in kubectl plugin list"
  comp="$("${env[@]}" "$kubectl" __complete gpuscale vers 2>/dev/null)"
  grep -q "^version" <<<"$comp" || fail "$1: kubectl __complete gpuscale vers gave '$comp'"
  # an offline command that imports the heavy dependencies: catches one the wheel does not declare
  "${env[@]}" "$kubectl" gpuscale top --demo --once --at 20m -o json >/dev/null \
    || fail "$1: top --demo --once failed (an undeclared dependency?)"
  echo "wheel-install: OK $1 ($out)"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
env -i PATH=/usr/bin:/bin HOME="$work/uv" UV_TOOL_DIR="$work/uv/tools" UV_TOOL_BIN_DIR="$work/uv/bin" \
  UV_CACHE_DIR="$work/uv/cache" UV_PYTHON_DOWNLOADS=never \
  "$uv" tool install -q --offline --no-index --find-links "$root/build/wheelhouse" --python "$base_python" "$root/$wheel"
check "uv tool install ($(( $(date +%s) - start )) s)" "$work/uv/bin" "$work/uv"

start=$(date +%s)
env -i PATH=/usr/bin:/bin HOME="$work/pipx" PIPX_HOME="$work/pipx/home" PIPX_BIN_DIR="$work/pipx/bin" \
  PIPX_MAN_DIR="$work/pipx/man" \
  "$pipx" install --quiet --python "$base_python" --pip-args="--no-index --find-links $root/build/wheelhouse" "$root/$wheel"
check "pipx install ($(( $(date +%s) - start )) s)" "$work/pipx/bin" "$work/pipx"
