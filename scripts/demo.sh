#!/usr/bin/env bash
# The whole loop on kubesim with a local Git repository — no cluster needed:
# build, start kubesim, create a repo with an example app, then diff, sync, status, change,
# prune, history and rollback, with kubectl showing the live state along the way.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "building driftless and kubesim (first build takes a few minutes on 2 cores)"
cargo build --quiet --bin driftless --bin kubesim
export PATH="$ROOT/target/debug:$PATH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/driftless-demo.XXXXXX")
cleanup() { [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

step "starting kubesim (an in-memory Kubernetes API server) on a free loopback port"
kubesim --addr 127.0.0.1:0 --kubeconfig-out "$WORK/kubeconfig" --ready-delay-ms 500 2>"$WORK/kubesim.log" &
SIM_PID=$!
for _ in $(seq 100); do [ -s "$WORK/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG="$WORK/kubeconfig"
run kubectl version

step "creating a Git repository with an example app"
REPO="$WORK/repo"
mkdir -p "$REPO/apps/guestbook"
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
cat > "$REPO/apps/guestbook/deployment.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: frontend
spec:
  replicas: 2
  selector: {matchLabels: {app: guestbook}}
  template:
    metadata: {labels: {app: guestbook}}
    spec:
      containers:
      - name: php-redis
        image: gcr.io/google-samples/gb-frontend:v5
        ports: [{containerPort: 80}]
YAML
cat > "$REPO/apps/guestbook/service.yaml" <<'YAML'
apiVersion: v1
kind: Service
metadata:
  name: frontend
spec:
  selector: {app: guestbook}
  ports: [{port: 80}]
YAML
cat > "$REPO/apps/guestbook/config.yaml" <<'YAML'
apiVersion: v1
kind: ConfigMap
metadata:
  name: guestbook-settings
data:
  greeting: "Hello from Git"
YAML
git -C "$REPO" init -q -b main && git -C "$REPO" add -A && git -C "$REPO" commit -q -m "guestbook: first version"

mkdir -p "$WORK/apps"
cat > "$WORK/apps/guestbook.yaml" <<YAML
apiVersion: driftless.dev/v1alpha1
kind: Application
metadata:
  name: guestbook
spec:
  source:
    repoURL: file://$REPO
    ref: main
    path: apps/guestbook
  destination:
    namespace: guestbook
  syncPolicy:
    prune: true
    createNamespace: true
  healthTimeout: 1m
YAML
export DRIFTLESS_APPS="$WORK/apps" DRIFTLESS_DATA_DIR="$WORK/data"
run cat "$WORK/apps/guestbook.yaml"

step "what would change?"
run driftless apps
run driftless diff guestbook || true

step "sync: server-side apply, then wait for health"
run driftless sync guestbook
run kubectl get deploy,svc,cm -n guestbook
run driftless status

step "a resync of an unchanged revision makes no writes"
run driftless sync guestbook
run driftless diff guestbook

step "commit a change: scale to 3 and change the greeting"
sed -i 's/replicas: 2/replicas: 3/' "$REPO/apps/guestbook/deployment.yaml"
sed -i 's/Hello from Git/Hello again/' "$REPO/apps/guestbook/config.yaml"
git -C "$REPO" commit -q -am "guestbook: scale to 3"
run driftless diff guestbook || true
run driftless sync guestbook
run kubectl get deploy frontend -n guestbook

step "delete a file from Git: sync prunes its object"
git -C "$REPO" rm -q apps/guestbook/config.yaml && git -C "$REPO" commit -q -m "guestbook: drop settings"
run driftless sync guestbook
run kubectl get cm -n guestbook

step "history, and a rollback to the first sync"
run driftless history guestbook
run driftless rollback guestbook 1
run kubectl get deploy,cm -n guestbook
run driftless get guestbook

step "done: kubesim stops now; the demo's files are in $WORK"
