package webhooktest

import "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

// unstructuredObject holds kinds policy.Scheme does not know (the CRD).
type unstructuredObject = unstructured.Unstructured
