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
MAIN_PID=$BASHPID
# Only the main shell cleans up (bash may run an EXIT trap in command-substitution subshells).
cleanup() {
  [ "$BASHPID" = "$MAIN_PID" ] || return 0
  for pid in ${SERVE_PID:-} ${SIM_PID:-}; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
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
  sync:
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

step "trust gates: validate before merge, and a policy that denies a :latest image at sync"
run driftless rollback guestbook --unpin
run driftless validate "$REPO/apps/guestbook" --baseline no-latest-tag --baseline no-privileged
cat >> "$WORK/apps/guestbook.yaml" <<'YAML'
  policy:
    baselines: [no-latest-tag, no-privileged]
YAML
sed -i 's|gb-frontend:v5|gb-frontend:latest|' "$REPO/apps/guestbook/deployment.yaml"
git -C "$REPO" commit -q -am "guestbook: track latest"
run driftless validate "$REPO/apps/guestbook" --baseline no-latest-tag || echo "(exit $? — a deny finding)"
run driftless sync guestbook || echo "(exit $? — denied by policy: nothing was applied or pruned)"
run driftless status guestbook
git -C "$REPO" revert --no-edit HEAD >/dev/null
run driftless sync guestbook

step "continuous mode: driftless serve with automated sync and self-heal"
sed -i 's/^    createNamespace: true$/    createNamespace: true\n    automated: true\n    selfHeal: true/' "$WORK/apps/guestbook.yaml"
driftless serve --listen 127.0.0.1:0 2>"$WORK/serve.log" &
SERVE_PID=$!
URL=""
for _ in $(seq 100); do
  URL=$(grep -o 'listening on http://[0-9.:]*' "$WORK/serve.log" 2>/dev/null | head -1 | sed 's/listening on //' || true)
  [ -n "$URL" ] && curl -sf "$URL/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "driftless serve is up at $URL (log: $WORK/serve.log)"
for _ in $(seq 50); do curl -s "$URL/api/v1/apps" | grep -q '"sync":"Synced"' && break; sleep 0.2; done
run curl -s "$URL/api/v1/apps"
echo
echo "# someone scales the deployment by hand…"
run kubectl scale deploy frontend -n guestbook --replicas=9
sleep 1
echo "# …and self-heal has put Git's replica count back:"
run kubectl get deploy frontend -n guestbook
run driftless --server "$URL" apps
curl -s "$URL/metrics" | grep -E '^driftless_(syncs_total|drift_events_total)' || true
kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null || true

step "done: kubesim stops now; the demo's files are in $WORK"
