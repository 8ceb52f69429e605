package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubectl-dc/kubectl-dc/policy"
	"github.com/kubectl-dc/kubectl-dc/policy/api/v1alpha1"
	"github.com/kubectl-dc/kubectl-dc/policy/celpolicy"
)

// Paths the handlers are served on.
const (
	PathValidate = "/validate"
	PathMutate   = "/mutate"
	// LabelIgnoreNamespace with the value "true" opts a namespace out of
	// every webhook and every compiled admission policy.
	LabelIgnoreNamespace = "placement.kubectl-dc.io/ignore"
)

// ServerConfig is what Serve needs; Options fills it from flags.
type ServerConfig struct {
	REST        *rest.Config
	Port        int
	CertDir     string
	HealthAddr  string
	MetricsAddr string
	// AllowedLabelGroups may change a Node's datacenter label.
	AllowedLabelGroups []string
	// Rotator, when set, manages the serving certificate (self-managed
	// certificates); its Secret lives in Rotator.SecretKey.Namespace.
	Rotator *RotatorConfig
	// ShutdownDelay is how long the webhook keeps answering after it is
	// told to stop (ctx ends), with /readyz failing, so that the endpoint
	// controllers take it out of the Service before it closes its port. 0
	// stops at once. Without it the API server keeps sending requests to a
	// terminating replica until its EndpointSlice changes, and every one
	// of them fails: the API server does not retry admission calls.
	ShutdownDelay time.Duration
	// PlacementLease, when set, names the Lease of the PlacementLedger that
	// serialises member placements across replicas.
	PlacementLease *types.NamespacedName
	// WebhookConfiguration, when set, names the validating webhook
	// configuration whose nodes webhook is kept scoped to the label keys
	// the live policies judge (ScopeNodes).
	WebhookConfiguration string
	// Pinned says who enforces the pinned rules; "" is PinnedWebhook.
	Pinned PinnedMode
	// AdmissionPoliciesLease is the Lease of the leader that writes the
	// compiled admission policies, when Pinned or some policy's
	// spec.pinnedEnforcement is cel or both; nil compiles none.
	AdmissionPoliciesLease *types.NamespacedName
}

// RotatorConfig names what the certificate rotator manages.
type RotatorConfig struct {
	SecretKey types.NamespacedName
	// DNSNames are the names the serving certificate is valid for; the first
	// is its common name.
	DNSNames []string
	// WebhookConfiguration is the name of both the validating and the
	// mutating webhook configuration whose caBundle is injected.
	WebhookConfiguration string
}

// tlsOptions: TLS 1.2 at least, and HTTP/1.1 only, since HTTP/2 lets one
// client open many streams cheaply (CVE-2023-44487) and the API server's
// webhook client does not need it.
func tlsOptions(c *tls.Config) {
	c.MinVersion = tls.VersionTLS12
	c.NextProtos = []string{"http/1.1"}
}

// Serve runs the webhook until ctx ends, then for cfg.ShutdownDelay more.
func Serve(ctx context.Context, cfg ServerConfig) error {
	log := ctrl.Log.WithName("dc-webhook")
	stopping := ctx
	ctx = delayedCancel(ctx, cfg.ShutdownDelay, func() {
		log.Info("shutting down: not ready, still answering", "for", cfg.ShutdownDelay)
	})
	mgr, err := ctrl.NewManager(cfg.REST, ctrl.Options{
		Scheme:                 policy.Scheme,
		Metrics:                metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress: cfg.HealthAddr,
		Cache: cache.Options{
			ByObject: map[client.Object]cache.ByObject{
				&corev1.Node{}:              {Transform: TransformNode},
				&corev1.Namespace{}:         {Transform: TransformNamespace},
				&appsv1.StatefulSet{}:       {Transform: TransformStatefulSet},
				&v1alpha1.PlacementPolicy{}: {Transform: TransformPolicy},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the controller manager: %w", err)
	}
	clientset, err := kubernetes.NewForConfig(cfg.REST)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}

	informers := map[string]toolscache.SharedIndexInformer{}
	for name, obj := range map[string]client.Object{
		"nodes": &corev1.Node{}, "namespaces": &corev1.Namespace{},
		"statefulsets": &appsv1.StatefulSet{}, "placementpolicies": &v1alpha1.PlacementPolicy{},
	} {
		inf, err := mgr.GetCache().GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watching %s (is the PlacementPolicy CRD installed? kubectl apply -k manifests/): %w", name, err)
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			return fmt.Errorf("informer of %s is a %T, not a SharedIndexInformer", name, inf)
		}
		informers[name] = sii
	}
	state := NewCacheState(informers["nodes"].GetIndexer(), informers["statefulsets"].GetIndexer(), informers["namespaces"].GetIndexer(), clientset)
	if _, err := informers["nodes"].AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { state.InvalidateNodes() },
		UpdateFunc: func(any, any) { state.InvalidateNodes() },
		DeleteFunc: func(any) { state.InvalidateNodes() },
	}); err != nil {
		return err
	}

	metrics := NewMetrics(crmetrics.Registry)
	engines := &EngineStore{State: state, Metrics: metrics, Log: log}
	if cfg.Pinned == "" || cfg.Pinned == PinnedWebhook {
		// A policy's spec.pinnedEnforcement may ask for compiled policies:
		// honour it only where this webhook may write them, asking again
		// while it may not.
		engines.Rights = &CompileRights{Client: clientset, Log: log}
		engines.Rights.Check(ctx)
	}
	if cfg.WebhookConfiguration != "" {
		engines.Scope = &ScopeNodes{Client: clientset, Name: cfg.WebhookConfiguration, Pinned: cfg.Pinned, Rights: engines.Rights,
			Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(clientset.Discovery()))}
	}
	// Both run whatever the flag says: a policy's spec.pinnedEnforcement
	// may ask for cel or both. The writer waits, never touching its Lease,
	// until one does.
	compileOpts := celpolicy.Options{ExcludedNamespaces: []string{"kube-node-lease"}, OptOutLabel: LabelIgnoreNamespace}
	if l := cfg.AdmissionPoliciesLease; l != nil {
		compileOpts.ExcludedNamespaces = []string{l.Namespace, "kube-node-lease"}
	}
	auditor := &PinnedAuditor{Mode: cfg.Pinned, Rights: engines.Rights, Engines: engines, Nodes: informers["nodes"].GetIndexer(), Options: compileOpts, Log: log.WithName("audit")}
	engines.Audit = auditor
	kicks := []func(){auditor.Kick}
	if err := mgr.Add(auditor); err != nil {
		return err
	}
	if l := cfg.AdmissionPoliciesLease; l != nil {
		host, _ := os.Hostname()
		ap := &AdmissionPolicies{
			Client: clientset, Mode: cfg.Pinned, Rights: engines.Rights, Engines: engines, Nodes: informers["nodes"].GetIndexer(),
			Options: compileOpts,
			Lease:   *l, Identity: host + "_" + string(uuid.NewUUID()), Log: log.WithName("admission-policies"),
		}
		kicks = append(kicks, ap.Kick)
		if err := mgr.Add(ap); err != nil {
			return err
		}
	}
	kickAll := func() {
		for _, k := range kicks {
			k()
		}
	}
	engines.OnRebuild = kickAll
	if _, err := informers["nodes"].AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { kickAll() },
		UpdateFunc: func(any, any) { kickAll() },
		DeleteFunc: func(any) { kickAll() },
	}); err != nil {
		return err
	}
	policies := informers["placementpolicies"]
	if _, err := policies.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { engines.Rebuild(ctx, policies.GetIndexer()) },
		UpdateFunc: func(any, any) { engines.Rebuild(ctx, policies.GetIndexer()) },
		DeleteFunc: func(any) { engines.Rebuild(ctx, policies.GetIndexer()) },
	}); err != nil {
		return err
	}

	h := &Handler{Engine: engines.Load, State: state, AllowedLabelGroups: sets.New(cfg.AllowedLabelGroups...), Metrics: metrics, Audit: auditor, Stopping: stopping}
	if l := cfg.PlacementLease; l != nil {
		h.Placements = &PlacementLedger{Client: clientset, Namespace: l.Namespace, Name: l.Name}
	}
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Port:    cfg.Port,
		CertDir: cfg.CertDir,
		TLSOpts: []func(*tls.Config){tlsOptions},
	})
	h.Register(srv)
	if err := mgr.Add(&certWaitingServer{Server: srv, certFile: filepath.Join(cfg.CertDir, "tls.crt")}); err != nil {
		return err
	}

	var rotatorReady chan struct{}
	if cfg.Rotator != nil {
		rotatorReady = make(chan struct{})
		r := cfg.Rotator
		if err := rotator.AddRotator(mgr, &rotator.CertRotator{
			SecretKey:      r.SecretKey,
			CertDir:        cfg.CertDir,
			CAName:         "dc-webhook-ca",
			CAOrganization: "kubectl-dc",
			DNSName:        r.DNSNames[0],
			ExtraDNSNames:  r.DNSNames[1:],
			IsReady:        rotatorReady,
			Webhooks: []rotator.WebhookInfo{
				{Name: r.WebhookConfiguration, Type: rotator.Validating},
				{Name: r.WebhookConfiguration, Type: rotator.Mutating},
			},
			FieldOwner: "dc-webhook",
			// Renew the serving certificate 30 days before it expires,
			// checking every hour; the CA lasts ten years.
			ServerCertDuration:     365 * 24 * time.Hour,
			LookaheadInterval:      30 * 24 * time.Hour,
			RotationCheckFrequency: time.Hour,
		}); err != nil {
			return fmt.Errorf("setting up certificate rotation: %w", err)
		}
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	// Readiness gates the first sync only: after a policy change the new
	// engine waits for its own member caches (EngineStore.Rebuild), and every
	// replica turning unready at once would fail every Fail-policy request.
	var synced atomic.Bool
	if err := mgr.AddReadyzCheck("caches", func(*http.Request) error {
		if synced.Load() {
			return nil
		}
		for name, inf := range informers {
			if !inf.HasSynced() {
				return fmt.Errorf("%s not synced", name)
			}
		}
		if engines.Load() == nil {
			return errors.New("no engine built yet")
		}
		if ok, waiting := state.MembersSynced(); !ok {
			return fmt.Errorf("member pods not synced: %s", waiting)
		}
		synced.Store(true)
		return nil
	}); err != nil {
		return err
	}
	if rotatorReady != nil {
		if err := mgr.AddReadyzCheck("certificates", func(*http.Request) error {
			select {
			case <-rotatorReady:
				return nil
			default:
				return errors.New("certificates not yet issued and injected")
			}
		}); err != nil {
			return err
		}
	}
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("shutdown", func(*http.Request) error {
		if stopping.Err() != nil {
			return errors.New("shutting down")
		}
		return nil
	}); err != nil {
		return err
	}

	go engines.KeepScoped(ctx)
	// Build the first engine as soon as policies are listed, even when
	// there are none (no event fires then).
	go func() {
		if toolscache.WaitForCacheSync(ctx.Done(), policies.HasSynced) {
			engines.Rebuild(ctx, policies.GetIndexer())
		}
	}()
	log.Info("starting", "port", cfg.Port, "certDir", cfg.CertDir, "selfManagedCerts", cfg.Rotator != nil)
	return mgr.Start(ctx)
}

// Register mounts Validate on PathValidate and Mutate on PathMutate of srv,
// wrapped in controller-runtime's AdmissionReview decoding. Tests mount the
// handlers with it too, so that they exercise what the server serves.
func (h *Handler) Register(srv ctrlwebhook.Server) {
	recoverPanic := true
	srv.Register(PathValidate, h.closingWhenStopping(&admission.Webhook{Handler: h.Validate(), RecoverPanic: &recoverPanic}))
	srv.Register(PathMutate, h.closingWhenStopping(&admission.Webhook{Handler: h.Mutate(), RecoverPanic: &recoverPanic}))
}

// closingWhenStopping answers with "Connection: close" once Stopping has
// ended. During the shutdown delay the API server then opens a new
// connection for each call it still sends here instead of keeping one
// idle in its pool; when the server finally closes, no pooled connection
// is left for a request to be written into (a broken pipe, which the API
// server does not retry).
func (h *Handler) closingWhenStopping(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.Stopping != nil && h.Stopping.Err() != nil {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// delayedCancel returns a context that ends delay after parent ends (at
// once for delay 0), calling onStop when parent ends.
func delayedCancel(parent context.Context, delay time.Duration, onStop func()) context.Context {
	if delay <= 0 {
		return parent
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	go func() {
		<-parent.Done()
		onStop()
		time.Sleep(delay)
		cancel()
	}()
	return ctx
}

// certWaitingServer starts the webhook server once its certificate exists:
// with self-managed certificates the Secret is filled, then mounted, after
// the process starts.
type certWaitingServer struct {
	ctrlwebhook.Server
	certFile string
}

// NeedLeaderElection is false: every replica serves.
func (s *certWaitingServer) NeedLeaderElection() bool { return false }

// Start waits for the certificate, then serves until ctx ends.
func (s *certWaitingServer) Start(ctx context.Context) error {
	for {
		if _, err := os.Stat(s.certFile); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	return s.Server.Start(ctx)
}

// memberSyncTimeout bounds how long a policy change waits for the member
// pods of new spread rules to be listed.
const memberSyncTimeout = 30 * time.Second

// EngineStore holds the engine of the current policies and swaps it
// atomically when they change.
type EngineStore struct {
	State   *CacheState
	Metrics *Metrics
	Log     interface {
		Info(msg string, kv ...any)
		Error(err error, msg string, kv ...any)
	}
	// Scope, when set, keeps the nodes webhook scoped to the new engine's
	// label keys after every rebuild.
	Scope *ScopeNodes
	// OnRebuild, when set, is called after every new engine is in use.
	OnRebuild func()
	// Audit, when set, builds its view of every new engine before it is
	// put in use.
	Audit *PinnedAuditor
	// Rights, when set, is asked again (CompileRights.Recheck) on every
	// rebuild and every scopeInterval, while it says no.
	Rights *CompileRights

	engine atomic.Pointer[policy.Engine]
	mu     sync.Mutex // serialises Rebuild, so that an older build never wins
	// unresolved is what syncScope last said of declared kinds the Scope
	// could not resolve; guarded by mu.
	unresolved string
}

// Load returns the current engine, nil before the first build.
func (s *EngineStore) Load() *policy.Engine { return s.engine.Load() }

// Rebuild compiles the policies in store into a new engine. An invalid
// policy (one that slipped past the webhook, say while it was down) is left
// out and counted rather than disabling every other policy.
func (s *EngineStore) Rebuild(ctx context.Context, store toolscache.Store) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var valid []v1alpha1.PlacementPolicy
	for _, o := range store.List() {
		p, ok := o.(*v1alpha1.PlacementPolicy)
		if !ok {
			continue
		}
		if errs := policy.ValidatePolicy(p); len(errs) > 0 {
			if s.Metrics != nil {
				s.Metrics.PolicyErrors.Inc()
			}
			s.Log.Error(errs.ToAggregate(), "ignoring invalid PlacementPolicy; fix it with kubectl edit placementpolicy", "name", p.Name)
			continue
		}
		valid = append(valid, *p)
	}
	eng, err := policy.NewEngine(valid)
	if err != nil {
		s.Log.Error(err, "building the policy engine; keeping the previous one")
		return
	}
	if s.State != nil && s.State.client != nil {
		// Judge with the new rules only once their members are known: an
		// engine over an empty member cache would admit any placement. The
		// engine in use keeps the informers it reads until then.
		defer s.State.PruneMembers(eng.MemberPodSelectors())
		if started := s.State.SetMembers(ctx, eng.MemberPodSelectors()); len(started) > 0 {
			wctx, cancel := context.WithTimeout(ctx, memberSyncTimeout)
			synced := toolscache.WaitForCacheSync(wctx.Done(), started...)
			cancel()
			if !synced {
				s.Log.Error(errors.New("member pod informers not synced"), "using the new policies anyway", "timeout", memberSyncTimeout)
			}
		}
	}
	s.Rights.Recheck(ctx, eng)
	if err := s.Audit.BuildFor(eng); err != nil {
		s.Log.Error(err, "auditing the compiled admission policies of the previous policies until the next change")
	}
	s.engine.Store(eng)
	s.Log.Info("policy engine rebuilt", "policies", len(valid), "labels", eng.Labels())
	s.syncScope(ctx, eng)
	if s.OnRebuild != nil {
		s.OnRebuild()
	}
}

// Timing of ScopeNodes: how long one sync may take, and how often the
// scope is checked besides every rebuild (the configuration may be
// installed or reapplied after the engine is built).
const (
	scopeTimeout  = 10 * time.Second
	scopeInterval = 15 * time.Second
)

// syncScope scopes the nodes webhook to eng's label keys; the caller holds
// s.mu or is the only caller.
func (s *EngineStore) syncScope(ctx context.Context, eng *policy.Engine) {
	if s.Scope == nil || eng == nil {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, scopeTimeout)
	defer cancel()
	keys, selected, mutate, podRelabels := s.Scope.Conditions(eng)
	declared, unresolved := s.Scope.DeclaredRules(eng)
	if msg := fmt.Sprint(unresolved); msg != s.unresolved {
		// Said when it changes, not on every resync.
		s.unresolved = msg
		for _, err := range unresolved {
			s.Log.Error(err, "a declared workload kind is not sent to dc-webhook")
		}
	}
	if changed, err := s.Scope.Sync(sctx, keys, selected, mutate, podRelabels, declared); err != nil {
		s.Log.Error(err, "keeping the previous scope of the webhooks")
	} else if changed {
		s.Log.Info("webhooks scoped to the policies' selectors, label keys and declared kinds", "nodeLabelKeys", eng.NodeLabelKeys(), "declaredRules", len(declared))
	}
}

// KeepScoped calls Resync every scopeInterval until ctx ends.
func (s *EngineStore) KeepScoped(ctx context.Context) {
	if s.Scope == nil && s.Rights == nil {
		return
	}
	t := time.NewTicker(scopeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Resync(ctx)
		}
	}
}

// Resync scopes the webhooks to the current engine, after asking again
// whether policies may ask for cel or both when the last answer was no
// (Rights): once they may, what follows their enforcement is rebuilt as
// after a policy change, without one.
func (s *EngineStore) Resync(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	eng := s.engine.Load()
	if s.Rights.Recheck(ctx, eng) {
		if err := s.Audit.BuildFor(eng); err != nil {
			s.Log.Error(err, "auditing the compiled admission policies of the previous policies until the next change")
		}
		if s.OnRebuild != nil {
			defer s.OnRebuild()
		}
	}
	s.syncScope(ctx, eng)
}
