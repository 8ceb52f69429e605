#!/usr/bin/env bash
# build-control-plane.sh builds the binaries of the local multi-datacenter
# control plane from the pinned tools modules and caches them under
# .cache/control-plane/<key>, the key being a hash of the tools modules and
# the Go version, so only the first build pays. It prints the bin directory.
#
# With the argument "kine" it builds kine instead, from its own module
# (test/tools/kine) into .cache/kine/<key>, keyed on that module alone, so
# that kine never changes the control-plane key above; it prints kine's path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/test/tools"
if [ "${1:-}" = kine ]; then
	kkey=$( (cat "$tools/kine/go.mod" "$tools/kine/go.sum"; go version) | sha256sum | cut -c1-16)
	kout="$root/.cache/kine/$kkey"
	if [ ! -f "$kout/.complete" ]; then
		mkdir -p "$kout"
		echo "building kine into $kout (first time only, a few minutes)" >&2
		(cd "$tools/kine" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$kout/kine" github.com/k3s-io/kine)
		touch "$kout/.complete"
	fi
	echo "$kout/kine"
	exit 0
fi
key=$( (cat "$tools/go.mod" "$tools/go.sum" "$tools/kwok/go.mod" "$tools/kwok/go.sum"; go version) | sha256sum | cut -c1-16)
out="$root/.cache/control-plane/$key"
if [ -f "$out/.complete" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$out"
echo "building control-plane binaries into $out (first time only, about 6 minutes)" >&2
export CGO_ENABLED=0
(cd "$tools" && go build -trimpath -ldflags=-s -o "$out/" \
	k8s.io/kubernetes/cmd/kube-apiserver \
	k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler)
(cd "$tools" && go build -trimpath -ldflags=-s -o "$out/etcd" go.etcd.io/etcd/server/v3)
# etcdctl is what operators run inside the etcd pods (kubectl exec).
(cd "$tools" && go build -trimpath -ldflags=-s -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3)
(cd "$tools/kwok" && go build -trimpath -ldflags=-s -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
# kwok needs its stage files; copy them from the module that built it.
kwokdir=$(cd "$tools/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
mkdir -p "$out/kwok-stages"
for s in node/fast node/heartbeat-with-lease pod/fast; do
	for f in "$kwokdir/kustomize/stage/$s"/*.yaml; do
		case "$f" in */kustomization.yaml) continue ;; esac
		cp "$f" "$out/kwok-stages/$(echo "$s" | tr / -)-$(basename "$f")"
	done
done
chmod -R u+w "$out"
touch "$out/.complete"
echo "$out"
