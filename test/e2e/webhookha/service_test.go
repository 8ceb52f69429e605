package webhookha_test

import (
	"context"
	"testing"
	"time"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
	"github.com/kubectl-dc/kubectl-dc/test/ha"
)

// TestServedThroughService: under load through the Service, every answer
// is the promised one and every replica takes a share.
func TestServedThroughService(t *testing.T) {
	c, f := env(t)
	ctx := context.Background()
	ns := cluster.Namespace(t, c)
	before := make([]int, len(f.Replicas))
	for i, r := range f.Replicas {
		n, err := r.Requests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before[i] = n
	}
	res := ha.Load{Client: loadClient(c), Namespace: ns, Clients: 20, Enforced: true}.Run(ctx, 5*time.Second)
	t.Log(res.Summary())
	if len(res.Samples) < 50 {
		t.Fatalf("only %d creates in 5 s: the load did not run", len(res.Samples))
	}
	if bad := res.Unexpected(); len(bad) > 0 {
		t.Fatalf("%d of %d creates had an unexpected outcome:\n%s", len(bad), len(res.Samples), ha.Describe(bad, 10))
	}
	for i, r := range f.Replicas {
		n, err := r.Requests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("replica %d (%s) answered %d requests", i+1, r.Host.IP, n-before[i])
		if n == before[i] {
			t.Errorf("replica %d answered nothing: the API server does not spread requests over the endpoints", i+1)
		}
	}
}
