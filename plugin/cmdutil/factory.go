// Package cmdutil holds what every verb of kubectl dc shares: the client
// factory, exit codes, and output flags and printers.
package cmdutil

import (
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultRequestTimeout bounds every API request of every verb unless
// --request-timeout says otherwise, so that an API server that accepts a
// connection and never answers (etcd without quorum behind it) fails the
// command fast instead of hanging it. Watches are not bounded by it.
const DefaultRequestTimeout = 5 * time.Second

// Client rate limits of every verb. client-go's defaults (5 QPS, burst 10)
// would throttle a drain's parallel evictions and status's parallel LIST
// pages to a crawl; the API server's own priority and fairness protects it
// from a busy client.
const (
	clientQPS   = 100
	clientBurst = 200
)

// EnvCountRequests is the variable that, set to a non-empty value, makes a verb print the
// number of API requests it made to ErrOut (benchmarks read it).
const EnvCountRequests = "KUBECTL_DC_COUNT_REQUESTS"

// Factory builds the clients of every verb from kubectl's connection flags,
// in the role of kubectl's cmdutil.Factory: one kubeconfig loader, one
// request timeout default, one rate limit.
type Factory struct {
	Flags *genericclioptions.ConfigFlags
	// Requests counts the HTTP requests of the clients built, when
	// KUBECTL_DC_COUNT_REQUESTS is set.
	Requests atomic.Int64
	count    bool
}

// NewFactory returns a factory over flags.
func NewFactory(flags *genericclioptions.ConfigFlags) *Factory {
	return &Factory{Flags: flags, count: os.Getenv(EnvCountRequests) != ""}
}

// CountsRequests reports whether KUBECTL_DC_COUNT_REQUESTS is set.
func (f *Factory) CountsRequests() bool { return f.count }

// ToRESTConfig loads the client configuration. Its errors say what to do. A
// missing kubeconfig is an error (ErrNoKubeconfig): client-go would fall
// back to http://localhost:8080 and fail later with a confusing connection
// error.
func (f *Factory) ToRESTConfig() (*rest.Config, error) {
	cfg, err := f.Flags.ToRESTConfig()
	if err == nil && noKubeconfig(f.Flags) {
		err = clientcmd.ErrEmptyConfig
	}
	if err != nil {
		return nil, explainConfigError(f.Flags, err)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRequestTimeout
	}
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = clientQPS, clientBurst
	}
	if f.count {
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, n: &f.Requests} })
	}
	return cfg, nil
}

// Clients are the clients a verb works with.
type Clients struct {
	// Config is the client configuration, with the request timeout.
	Config *rest.Config
	// Kube speaks protobuf for the built-in kinds: big node and pod lists
	// decode several times faster than JSON.
	Kube kubernetes.Interface
	// Watch is Kube without the request timeout, for watches that a verb
	// bounds with its own deadline.
	Watch kubernetes.Interface
	// Dynamic reads PlacementPolicies and declared workload kinds (JSON).
	Dynamic dynamic.Interface
	// Server is the API server's URL, for messages.
	Server string
}

// Clients builds the clients.
func (f *Factory) Clients() (*Clients, error) {
	cfg, err := f.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	pb := rest.CopyConfig(cfg)
	pb.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	pb.ContentType = "application/vnd.kubernetes.protobuf"
	kube, err := kubernetes.NewForConfig(pb)
	if err != nil {
		return nil, err
	}
	wcfg := rest.CopyConfig(pb)
	wcfg.Timeout = 0
	watch, err := kubernetes.NewForConfig(wcfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Clients{Config: cfg, Kube: kube, Watch: watch, Dynamic: dyn, Server: cfg.Host}, nil
}

// countingTransport counts the HTTP requests made through it.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}
