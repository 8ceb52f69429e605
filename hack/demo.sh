#!/usr/bin/env bash
# demo.sh: the main job, end to end, on a fresh machine. It brings up the
# MacStadium example cluster (pod-1, pod-2 and the witness pod-3) on
# loopback, installs the PlacementPolicy CRD, the example policy and
# dc-webhook, creates per-datacenter worker and jupiter-brain deployments,
# shows a deployment without a datacenter being denied, then
# `kubectl dc status`, a what-if and a drain plan. `make demo` runs it after
# `make build`; the cluster and the webhook keep running afterwards.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/bin:$PATH"
dir="$root/.cache/demo"
label=topology.kubernetes.io/zone
whdir="$dir/webhook"
whport=19443

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[36m$ %s\033[0m\n' "$*"; "$@"; }

# A previous demo's webhook would answer for a cluster that is gone.
if [ -f "$dir/webhook.pid" ]; then
	kill "$(cat "$dir/webhook.pid")" 2>/dev/null || true
fi

step "Starting the MacStadium example cluster on loopback: etcd, kube-apiserver, scheduler, controller-manager, kwok"
eval "$(dc-cluster --dir "$dir" up)"
export KUBECONFIG

step "Nodes per datacenter"
show kubectl get nodes -L "$label" --sort-by=".metadata.labels.topology\.kubernetes\.io/zone"

step "Installing the PlacementPolicy CRD and the MacStadium example policy"
show kubectl apply -f manifests/crd/
kubectl wait --for condition=Established --timeout=60s crd/placementpolicies.placement.kubectl-dc.io >/dev/null
show kubectl apply -f manifests/examples/macstadium-policy.yaml

step "Running dc-webhook against the cluster and registering it from manifests/"
mkdir -p "$whdir"
dc-webhook local-certs --dir "$whdir" >/dev/null
dc-webhook --kubeconfig "$KUBECONFIG" --cert-dir "$whdir" --port "$whport" \
	--health-addr 127.0.0.1:19444 --metrics-addr 127.0.0.1:19445 \
	--self-managed-certs=false --shutdown-delay=0s >"$dir/webhook.log" 2>&1 &
echo $! >"$dir/webhook.pid"
for _ in $(seq 1 120); do
	if curl -sf http://127.0.0.1:19444/readyz >/dev/null 2>&1; then break; fi
	sleep 0.5
done
curl -sf http://127.0.0.1:19444/readyz >/dev/null || { echo "dc-webhook did not become ready; see $dir/webhook.log" >&2; exit 1; }
dc-webhook render-local --manifests manifests --url "https://127.0.0.1:$whport" --ca-file "$whdir/ca.crt" | kubectl apply -f -

# Every API server loads the new configurations on its own; wait until a
# server-side dry run of a deployment without a datacenter is denied.
probe='{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"probe","namespace":"default","labels":{"app":"worker"}},"spec":{"selector":{"matchLabels":{"app":"worker"}},"template":{"metadata":{"labels":{"app":"worker"}},"spec":{"containers":[{"name":"w","image":"w"}]}}}}'
for _ in $(seq 1 60); do
	if ! echo "$probe" | kubectl apply --dry-run=server -f - >/dev/null 2>&1; then break; fi
	sleep 0.5
done

step "Per-datacenter worker and jupiter-brain deployments (the webhook injects each one's nodeSelector)"
kubectl create namespace travis-ci --dry-run=client -o yaml | kubectl apply -f - >/dev/null
for dc in pod-1 pod-2; do
	for app in worker jupiter-brain; do
		cat <<YAML | kubectl apply -n travis-ci -f -
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $app-$dc
  labels: {app: $app, placement.kubectl-dc.io/datacenter: $dc}
spec:
  replicas: 2
  selector: {matchLabels: {app: $app, dc: $dc}}
  template:
    metadata: {labels: {app: $app, dc: $dc, placement.kubectl-dc.io/datacenter: $dc}}
    spec:
      containers: [{name: $app, image: travisci/$app}]
YAML
	done
done
kubectl -n travis-ci rollout status deploy --timeout=60s >/dev/null
show kubectl -n travis-ci get pods -o wide --sort-by=.spec.nodeName

step "A worker deployment that selects no datacenter is denied"
cat <<'YAML' >"$dir/unpinned-worker.yaml"
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker-anywhere, labels: {app: worker}}
spec:
  replicas: 1
  selector: {matchLabels: {app: worker, dc: any}}
  template:
    metadata: {labels: {app: worker, dc: any}}
    spec:
      containers: [{name: worker, image: travisci/worker}]
YAML
printf '\033[36m$ kubectl apply -n travis-ci -f unpinned-worker.yaml\033[0m\n'
if kubectl apply -n travis-ci -f "$dir/unpinned-worker.yaml"; then
	echo "expected a denial, but the deployment was admitted" >&2
	exit 1
fi
printf '\033[36m$ kubectl dc check -f unpinned-worker.yaml --policy manifests/examples/macstadium-policy.yaml\033[0m\n'
kubectl dc check -f "$dir/unpinned-worker.yaml" --policy manifests/examples/macstadium-policy.yaml || true

step "etcd as kubeadm runs it: TLS with client certificates, read by exec into its pods"
show kubectl -n kube-system exec etcd-pod-1-cp-1 -- etcdctl --endpoints="$(kubectl -n kube-system get pod etcd-pod-1-cp-1 -o jsonpath='{.metadata.annotations.kubeadm\.kubernetes\.io/etcd\.advertise-client-urls}')" \
	--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key \
	endpoint status --cluster -w table

step "Can we lose a datacenter right now? (etcd read by exec; the control-plane endpoint from kubeadm-config)"
show kubectl dc status

step "What if pod-1, which holds the control-plane endpoint, were lost?"
show kubectl dc status --lose pod-1

step "What if pod-2 were lost?"
show kubectl dc status --lose pod-2

step "What would draining pod-1 do? (it holds the control-plane endpoint)"
show kubectl dc drain pod-1 --dry-run || true

step "The cluster and dc-webhook keep running"
cat <<EOT
  export KUBECONFIG=$KUBECONFIG
  kubectl dc status -o wide
  bin/dc-cluster dc-down pod-2 && kubectl dc status      # power off a datacenter
  make demo-down                                          # stop everything
EOT
