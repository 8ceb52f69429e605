package webhook

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2/textlogger"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options are the flags of dc-webhook.
type Options struct {
	// Port the admission webhook listens on (HTTPS).
	Port int
	// CertDir holds tls.crt and tls.key; changes to them are picked up
	// without a restart.
	CertDir string
	// Kubeconfig is the path of a kubeconfig; "" means in-cluster.
	Kubeconfig string
	// HealthAddr serves /healthz and /readyz; "0" disables them.
	HealthAddr string
	// MetricsAddr serves Prometheus /metrics; "0" disables it.
	MetricsAddr string
	// AllowedLabelGroups may add, change or remove a Node's datacenter label.
	AllowedLabelGroups []string
	// SelfManagedCerts makes the webhook issue its own CA and serving
	// certificate into CertSecret and inject the CA into WebhookConfiguration.
	SelfManagedCerts bool
	// Namespace of the webhook, of CertSecret and of Service.
	Namespace string
	// CertSecret is the Secret the self-managed certificates are kept in.
	CertSecret string
	// Service is the name of the webhook's Service; the serving certificate
	// is valid for its DNS names.
	Service string
	// WebhookConfiguration is the name of the validating and mutating
	// webhook configurations.
	WebhookConfiguration string
	// QPS and Burst of the client that lists and watches.
	QPS   float32
	Burst int
	// ShutdownDelay: see ServerConfig.ShutdownDelay.
	ShutdownDelay time.Duration
	// PlacementLease names the Lease in Namespace that serialises member
	// placements across replicas (see PlacementLedger); "" judges each
	// placement alone.
	PlacementLease string
	// PinnedEnforcement is who enforces the pinned rules: webhook, cel or
	// both (PinnedModes).
	PinnedEnforcement string
	// AdmissionPoliciesLease names the Lease in Namespace through which
	// replicas elect the one that writes the compiled admission policies.
	AdmissionPoliciesLease string

	log *textlogger.Config
}

// NewOptions returns the defaults of the deployed webhook.
func NewOptions() *Options {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "dc-system"
	}
	return &Options{
		Port:                   9443,
		CertDir:                "/certs",
		HealthAddr:             ":8081",
		MetricsAddr:            ":8080",
		AllowedLabelGroups:     []string{"system:masters"},
		Namespace:              ns,
		CertSecret:             "dc-webhook-certs",
		Service:                "dc-webhook",
		WebhookConfiguration:   "dc-webhook",
		QPS:                    50,
		Burst:                  100,
		ShutdownDelay:          5 * time.Second,
		PinnedEnforcement:      string(PinnedWebhook),
		AdmissionPoliciesLease: "dc-webhook-admission-policies",
		log:                    textlogger.NewConfig(),
	}
}

// NewCommand returns the dc-webhook command with its hidden helper
// subcommands (render-local, local-certs).
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "dc-webhook",
		Short: "Admission webhook that enforces PlacementPolicies",
		Long: `dc-webhook enforces PlacementPolicies at admission: datacenter-bound
workloads must select exactly one real datacenter, quorum members (etcd) must
stay spread so that losing one datacenter never loses quorum, and only allowed
groups may change a Node's datacenter label. It serves /validate and /mutate
(AdmissionReview v1) over HTTPS and judges from informer caches, never calling
the API server on the admission path.`,
		SilenceErrors:     true,
		Args:              cobra.NoArgs,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Port, "port", o.Port, "HTTPS port of /validate and /mutate.")
	f.StringVar(&o.CertDir, "cert-dir", o.CertDir, "Directory with tls.crt and tls.key; reloaded when they change.")
	f.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path of a kubeconfig; empty means in-cluster configuration.")
	f.StringVar(&o.HealthAddr, "health-addr", o.HealthAddr, "Address of /healthz and /readyz (readiness waits for the caches); 0 disables.")
	f.StringVar(&o.MetricsAddr, "metrics-addr", o.MetricsAddr, "Address of Prometheus /metrics; 0 disables.")
	f.StringSliceVar(&o.AllowedLabelGroups, "allowed-label-groups", o.AllowedLabelGroups, "Groups that may add, change or remove a Node's datacenter label; everyone else (kubelets included) is denied.")
	f.BoolVar(&o.SelfManagedCerts, "self-managed-certs", o.SelfManagedCerts, "Issue and rotate the CA and serving certificate in --cert-secret and inject the CA into the webhook configurations.")
	f.StringVar(&o.Namespace, "namespace", o.Namespace, "Namespace of the webhook, its Service and --cert-secret; defaults to $POD_NAMESPACE when set.")
	f.StringVar(&o.CertSecret, "cert-secret", o.CertSecret, "Secret holding the self-managed certificates.")
	f.StringVar(&o.Service, "service", o.Service, "Service in front of the webhook; the self-managed certificate is valid for its DNS names.")
	f.StringVar(&o.WebhookConfiguration, "webhook-configuration", o.WebhookConfiguration, "Name of the validating and mutating webhook configurations: they receive the CA (--self-managed-certs), and the nodes webhook is kept scoped to the label keys the policies judge.")
	f.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "QPS of the client that lists and watches.")
	f.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of the client that lists and watches.")
	f.StringVar(&o.PlacementLease, "placement-lease", o.PlacementLease, "Lease in --namespace through which replicas serialise member placements, so that placements made at once cannot together exceed a spread limit; it must exist and the webhook needs get and update on it. Empty judges each placement alone.")
	f.StringVar(&o.PinnedEnforcement, "pinned-enforcement", o.PinnedEnforcement, "Who enforces the pinned rules: webhook (the webhook judges and injects), cel (the rules are compiled into ValidatingAdmissionPolicies and MutatingAdmissionPolicies that the API server runs in-process, even with every replica down; the webhook configurations stop sending what they cover), or both (the compiled policies enforce and inject; the webhook judges the same objects without refusing them for what the policies cover, and counts every verdict that differs in dc_webhook_pinned_verdict_differences_total). A PlacementPolicy's spec.pinnedEnforcement overrides this default for its rules. cel and both need the RBAC of manifests/overlays/cel.")
	f.StringVar(&o.AdmissionPoliciesLease, "admission-policies-lease", o.AdmissionPoliciesLease, "Lease in --namespace through which replicas elect the one that writes the compiled admission policies (--pinned-enforcement cel or both, or a policy's spec.pinnedEnforcement); it must exist and the webhook needs get and update on it once some policy is compiled. Empty compiles no policy.")
	f.DurationVar(&o.ShutdownDelay, "shutdown-delay", o.ShutdownDelay, "How long to keep answering after SIGTERM, with /readyz failing, so that the Service stops sending requests first; keep it below terminationGracePeriodSeconds.")
	logFlags := flag.NewFlagSet("log", flag.ContinueOnError)
	o.log.AddFlags(logFlags)
	f.AddGoFlagSet(logFlags)
	cmd.AddCommand(NewCmdRenderLocal(), NewCmdLocalCerts())
	return cmd
}

// Complete fills what the flags leave open.
func (o *Options) Complete() error {
	var clean []string
	for _, g := range o.AllowedLabelGroups {
		if g = strings.TrimSpace(g); g != "" {
			clean = append(clean, g)
		}
	}
	o.AllowedLabelGroups = clean
	return nil
}

// Validate checks the flags.
func (o *Options) Validate() error {
	if o.Port < 1 || o.Port > 65535 {
		return fmt.Errorf("--port %d is out of range: use 1-65535", o.Port)
	}
	if o.CertDir == "" {
		return fmt.Errorf("--cert-dir is empty: name the directory that holds (or will hold) tls.crt and tls.key")
	}
	if o.ShutdownDelay < 0 {
		return fmt.Errorf("--shutdown-delay %s is negative: use 0 to stop at once", o.ShutdownDelay)
	}
	if len(o.AllowedLabelGroups) == 0 {
		return fmt.Errorf("--allowed-label-groups is empty: nobody could ever label a node; keep system:masters at least")
	}
	if !slices.Contains(PinnedModes, PinnedMode(o.PinnedEnforcement)) {
		modes := make([]string, len(PinnedModes))
		for i, m := range PinnedModes {
			modes[i] = string(m)
		}
		return fmt.Errorf("--pinned-enforcement %q is not one of %s", o.PinnedEnforcement, strings.Join(modes, ", "))
	}
	if PinnedMode(o.PinnedEnforcement).compiles() && (o.Namespace == "" || o.AdmissionPoliciesLease == "") {
		return fmt.Errorf("--pinned-enforcement %s needs --namespace and --admission-policies-lease: replicas elect the one that writes the admission policies through that Lease", o.PinnedEnforcement)
	}
	if o.SelfManagedCerts && (o.Namespace == "" || o.CertSecret == "" || o.Service == "" || o.WebhookConfiguration == "") {
		return fmt.Errorf("--self-managed-certs needs --namespace, --cert-secret, --service and --webhook-configuration")
	}
	return nil
}

// Run serves until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	ctrl.SetLogger(textlogger.NewLogger(o.log))
	cfg, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading --kubeconfig %q: %w", o.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	cfg.UserAgent = "dc-webhook"
	sc := ServerConfig{
		REST:               cfg,
		Port:               o.Port,
		CertDir:            o.CertDir,
		HealthAddr:         o.HealthAddr,
		MetricsAddr:        o.MetricsAddr,
		AllowedLabelGroups: o.AllowedLabelGroups,
		ShutdownDelay:      o.ShutdownDelay,
	}
	sc.WebhookConfiguration = o.WebhookConfiguration
	sc.Pinned = PinnedMode(o.PinnedEnforcement)
	if o.Namespace != "" && o.AdmissionPoliciesLease != "" {
		sc.AdmissionPoliciesLease = &types.NamespacedName{Namespace: o.Namespace, Name: o.AdmissionPoliciesLease}
	}
	if o.PlacementLease != "" {
		sc.PlacementLease = &types.NamespacedName{Namespace: o.Namespace, Name: o.PlacementLease}
	}
	if o.SelfManagedCerts {
		svc := o.Service + "." + o.Namespace + ".svc"
		sc.Rotator = &RotatorConfig{
			SecretKey:            types.NamespacedName{Namespace: o.Namespace, Name: o.CertSecret},
			DNSNames:             []string{svc, svc + ".cluster.local"},
			WebhookConfiguration: o.WebhookConfiguration,
		}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return Serve(ctx, sc)
}
