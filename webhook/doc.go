// Package webhook is dc-webhook: thin admission handlers over the policy
// engine, the controller-runtime server that mounts them on /validate and
// /mutate, the informer caches that back policy.State, and the certificate
// plumbing.
//
// The admission path never calls the API server. Nodes, Namespaces (labels),
// StatefulSets (replicas) and PlacementPolicies come from the manager's
// cache, stripped by the Transform functions to what the engine reads;
// member pods come from one label-selected informer per spread rule selector
// (CacheState.SetMembers), so only quorum members are cached. A policy change
// rebuilds the engine (EngineStore.Rebuild) and swaps it atomically once the
// new member caches have synced.
//
// Run locally against any cluster (tests, the demo):
//
//	kubectl apply -f manifests/crd/ -f manifests/examples/macstadium-policy.yaml
//	dc-webhook local-certs --dir /tmp/dcw
//	dc-webhook --kubeconfig $KUBECONFIG --cert-dir /tmp/dcw --port 9443 \
//	    --health-addr 127.0.0.1:9444 --metrics-addr 127.0.0.1:9445 --self-managed-certs=false &
//	until curl -sf http://127.0.0.1:9444/readyz; do sleep 0.5; done
//	dc-webhook render-local --manifests manifests --url https://127.0.0.1:9443 \
//	    --ca-file /tmp/dcw/ca.crt | kubectl apply -f -
//
// render-local prints the webhook configurations of manifests/ (named
// dc-webhook-local) with clientConfig.url pointing at the local process.
package webhook
