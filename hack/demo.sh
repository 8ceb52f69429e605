#!/usr/bin/env bash
# demo.sh: the main job, end to end, on a fresh machine. It brings up the
# MacStadium example cluster (pod-1, pod-2 and the witness pod-3) on
# loopback and shows it. `make demo` runs it after `make build`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/bin:$PATH"
dir="$root/.cache/demo"
label=topology.kubernetes.io/zone

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the MacStadium example cluster (etcd, kube-apiserver, scheduler, controller-manager, kwok) on loopback"
eval "$(dc-cluster --dir "$dir" up)"
export KUBECONFIG

step "Nodes per datacenter"
kubectl get nodes -L "$label" --sort-by=".metadata.labels.topology\.kubernetes\.io/zone"

step "The cluster keeps running. Point kubectl at it with:"
echo "  export KUBECONFIG=$KUBECONFIG"
echo "Stop it with: bin/dc-cluster down"
