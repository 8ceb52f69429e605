package webhook

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// Files of manifests/ that hold the webhook configurations.
const (
	ValidatingManifest = "webhook-validating.yaml"
	MutatingManifest   = "webhook-mutating.yaml"
	// LocalSuffix ends the names of the configurations of a local webhook.
	LocalSuffix = "-local"
)

// Configurations reads the webhook configurations of manifestsDir (or of
// its base/ directory) as deployed, Service references kept, trusting
// caBundle: what a cluster gets from `kubectl apply -k manifests/` once the
// CA is injected.
func Configurations(manifestsDir string, caBundle []byte) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration, error) {
	return readConfigurations(manifestsDir, "", func(cc *admissionregistrationv1.WebhookClientConfig) {
		cc.CABundle = caBundle
	})
}

// LocalConfigurations reads the webhook configurations of manifestsDir (or
// of its base/ directory) and
// points every webhook at baseURL (https://127.0.0.1:9443, say) plus the
// path of its Service, trusting caBundle: the configurations the API server
// needs to reach a dc-webhook running as a local process. Their names get
// the suffix LocalSuffix, so that they never merge with the deployed
// configurations (kubectl apply -k manifests/ still works next to them).
// Everything else
// (rules, selectors, matchConditions, failure policies, timeouts) is kept
// as deployed.
func LocalConfigurations(manifestsDir, baseURL string, caBundle []byte) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration, error) {
	baseURL = strings.TrimSuffix(baseURL, "/")
	if !strings.HasPrefix(baseURL, "https://") {
		return nil, nil, fmt.Errorf("webhook URL %q must start with https://", baseURL)
	}
	return readConfigurations(manifestsDir, LocalSuffix, func(cc *admissionregistrationv1.WebhookClientConfig) {
		path := ""
		if cc.Service != nil && cc.Service.Path != nil {
			path = *cc.Service.Path
		}
		url := baseURL + path
		cc.Service = nil
		cc.URL = &url
		cc.CABundle = caBundle
	})
}

// readConfigurations reads both configurations, appends suffix to their
// names and passes every webhook's client configuration to edit.
func readConfigurations(manifestsDir, suffix string, edit func(*admissionregistrationv1.WebhookClientConfig)) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration, error) {
	if _, err := os.Stat(filepath.Join(manifestsDir, ValidatingManifest)); err != nil {
		// manifests/ keeps the webhook in base/.
		if _, berr := os.Stat(filepath.Join(manifestsDir, "base", ValidatingManifest)); berr == nil {
			manifestsDir = filepath.Join(manifestsDir, "base")
		}
	}
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := readManifest(filepath.Join(manifestsDir, ValidatingManifest), v); err != nil {
		return nil, nil, err
	}
	v.Name += suffix
	for i := range v.Webhooks {
		edit(&v.Webhooks[i].ClientConfig)
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := readManifest(filepath.Join(manifestsDir, MutatingManifest), m); err != nil {
		return nil, nil, err
	}
	m.Name += suffix
	for i := range m.Webhooks {
		edit(&m.Webhooks[i].ClientConfig)
	}
	return v, m, nil
}

// RenderLocal returns LocalConfigurations as a YAML stream for kubectl apply.
func RenderLocal(manifestsDir, baseURL string, caBundle []byte) ([]byte, error) {
	v, m, err := LocalConfigurations(manifestsDir, baseURL, caBundle)
	if err != nil {
		return nil, err
	}
	v.APIVersion, v.Kind = "admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"
	m.APIVersion, m.Kind = "admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"
	var buf bytes.Buffer
	for i, obj := range []any{v, m} {
		out, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(out)
	}
	return buf.Bytes(), nil
}

func readManifest(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading webhook manifest: %w (point --manifests at the repository's manifests/ directory)", err)
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	return nil
}

// RenderLocalOptions are the flags of `dc-webhook render-local`.
type RenderLocalOptions struct {
	Manifests string
	URL       string
	CAFile    string
}

// NewCmdRenderLocal returns the hidden render-local command, which prints
// the webhook configurations of manifests/ pointed at a local dc-webhook.
func NewCmdRenderLocal() *cobra.Command {
	o := &RenderLocalOptions{Manifests: "manifests", URL: "https://127.0.0.1:9443"}
	cmd := &cobra.Command{
		Use:    "render-local --ca-file CA.crt [--url https://127.0.0.1:9443] [--manifests DIR]",
		Short:  "Print the webhook configurations pointed at a dc-webhook running as a local process",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.CAFile == "" {
				return fmt.Errorf("--ca-file is required: the CA that signed the local serving certificate (see dc-webhook local-certs)")
			}
			cmd.SilenceUsage = true
			ca, err := os.ReadFile(o.CAFile)
			if err != nil {
				return fmt.Errorf("reading --ca-file: %w", err)
			}
			out, err := RenderLocal(o.Manifests, o.URL, ca)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&o.Manifests, "manifests", o.Manifests, "Directory holding "+strings.Join(sortedStrings(ValidatingManifest, MutatingManifest), " and ")+".")
	cmd.Flags().StringVar(&o.URL, "url", o.URL, "Base https URL of the local webhook; each webhook's Service path is appended.")
	cmd.Flags().StringVar(&o.CAFile, "ca-file", o.CAFile, "PEM CA bundle the API server trusts for the local webhook.")
	return cmd
}

func sortedStrings(s ...string) []string { sort.Strings(s); return s }
