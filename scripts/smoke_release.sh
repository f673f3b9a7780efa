#!/usr/bin/env bash
# Smoke-test a release archive the way krew installs it, with none of the project's virtualenv:
# unpack into an empty directory, link kubectl-gpuscale onto an otherwise bare PATH, and run it
# through the real kubectl binary (help, version, plugin list, plugin completion).
#
#   scripts/smoke_release.sh [ARCHIVE] [KUBECTL]
#
# ARCHIVE defaults to this machine's archive in dist/; KUBECTL to .venv/bin/kubectl, else PATH.
# Portable to macOS's bash 3.2 (the release workflow runs it on every platform).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$root/kubectl_gpuscale/__init__.py")"
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
case "$(uname -m)" in x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
archive="${1:-$root/dist/kubectl-gpuscale_v${version}_${os}_${arch}.tar.gz}"
kubectl="${2:-}"
if [[ -z "$kubectl" ]]; then
  if [[ -x "$root/.venv/bin/kubectl" ]]; then kubectl="$root/.venv/bin/kubectl"; else kubectl="$(command -v kubectl)"; fi
fi
[[ -f "$archive" ]] || { echo "smoke: no archive $archive (run scripts/build_release.py build)" >&2; exit 1; }
[[ -x "$kubectl" ]] || { echo "smoke: no kubectl binary" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/install" "$work/bin" "$work/home"
tar -xzf "$archive" -C "$work/install"
[[ -f "$work/install/LICENSE" ]] || { echo "smoke: LICENSE missing from the archive" >&2; exit 1; }
# krew symlinks bin/kubectl-<name> to the executable inside its install directory.
ln -s "$work/install/kubectl-gpuscale" "$work/bin/kubectl-gpuscale"
cp "$kubectl" "$work/bin/kubectl"

run() { env -i PATH="$work/bin:/usr/bin:/bin" HOME="$work/home" LANG=C.UTF-8 "$@"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

now_ms() { python3 -c 'import time; print(int(time.time() * 1000))' 2>/dev/null || echo 0; }  # macOS date has no %N
start=$(now_ms)
help="$(run kubectl gpuscale --help)" || fail "kubectl gpuscale --help exited $?"
elapsed_ms=$(( $(now_ms) - start ))
grep -q "^Usage: kubectl gpuscale" <<<"$help" || fail "--help does not read 'Usage: kubectl gpuscale': $help"
grep -q "version" <<<"$help" || fail "--help lists no commands"

out="$(run kubectl gpuscale version)" || fail "kubectl gpuscale version exited $?"
grep -q "^kubectl-gpuscale ${version} " <<<"$out" || fail "version printed '$out', expected ${version}"
json="$(run kubectl gpuscale version -o json)" || fail "version -o json exited $?"
grep -q "\"version\": \"${version}\"" <<<"$json" || fail "version -o json printed '$json'"

run kubectl plugin list 2>/dev/null | grep -q "kubectl-gpuscale" || fail "kubectl plugin list does not show kubectl-gpuscale"

run kubectl gpuscale completion bash | bash -n || fail "completion bash is not valid bash"
run kubectl gpuscale completion kubectl >"$work/bin/kubectl_complete-gpuscale"
chmod +x "$work/bin/kubectl_complete-gpuscale"
comp="$(run kubectl __complete gpuscale vers 2>/dev/null)" || fail "kubectl __complete exited $?"
grep -q "^version" <<<"$comp" || fail "kubectl __complete gpuscale vers gave: $comp"

err="$(run kubectl gpuscale no-such-command 2>&1 >/dev/null)" && fail "an unknown command exited 0"
grep -q "Traceback" <<<"$err" && fail "traceback on an unknown command: $err"

# Commands that work offline import the heavy parts (textual, kubernetes, yaml, engine parsers): a module
# PyInstaller missed shows up here, not in --help.
offline() {  # $1: label, rest: command; exit 0 or 1 (findings) with JSON on stdout and no traceback
  local out rc=0
  out="$(run kubectl gpuscale "${@:2}" 2>"$work/stderr")" || rc=$?
  { [[ $rc -le 1 ]] && ! grep -q Traceback "$work/stderr" && [[ "${out:0:1}" == "{" || "${out:0:1}" == "[" ]]; } \
    || fail "$1 exited $rc: $(head -c 600 "$work/stderr")"
}
offline "top --demo --once" top --demo --once --at 20m -o json
offline "simulate" simulate --pattern dev --duration 1h -o json
samples="${GPUSCALE_SAMPLES:-$root/../shared/samples}"
if [[ -d "$samples/logs" && -d "$samples/manifests" ]]; then
  log="$(ls "$samples"/logs/vllm_*.log | head -n 1)"
  offline "coldstart -f" coldstart -f "$log" -o json
  offline "doctor -f" doctor -f "$samples/manifests" -o json
else
  echo "smoke: note: no samples at $samples; coldstart -f and doctor -f not run" >&2
fi

echo "smoke: OK $(basename "$archive") ($(du -sh "$work/install" | cut -f1) unpacked, --help via kubectl ${elapsed_ms} ms)"
