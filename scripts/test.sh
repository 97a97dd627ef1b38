#!/usr/bin/env bash
# The project's test command: installs what the tests need (system packages, as root), then
# runs formatting, lints and the whole test suite. Used by CI (.ci/run) and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the integration tests drive for real (git daemon/http-backend, sshd, ...).
mapfile -t wanted < <(cat crates/*/tests/APT_PACKAGES 2>/dev/null | sed 's/#.*//' | awk 'NF' | sort -u)
missing=()
for p in "${wanted[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "missing system packages (run as root or install them): ${missing[*]}" >&2
    exit 1
  fi
fi
command -v kubectl >/dev/null || { echo "kubectl is required: it is the judge of kubesim's realism" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
