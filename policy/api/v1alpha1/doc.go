// Package v1alpha1 holds the PlacementPolicy API: which workloads are bound to
// one datacenter, and which quorum members must stay spread across them.
//
// +kubebuilder:object:generate=true
// +groupName=placement.kubectl-dc.io
package v1alpha1
