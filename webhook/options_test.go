package webhook

import (
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(o *Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"port out of range", func(o *Options) { o.Port = 70000 }, "--port 70000 is out of range"},
		{"no cert dir", func(o *Options) { o.CertDir = "" }, "--cert-dir is empty"},
		{"no allowed groups", func(o *Options) { o.AllowedLabelGroups = []string{" ", ""} }, "--allowed-label-groups is empty"},
		{"self-managed without secret", func(o *Options) { o.SelfManagedCerts = true; o.CertSecret = "" }, "--self-managed-certs needs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOptions()
			tt.edit(o)
			if err := o.Complete(); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCommandFlagsShowUsageOnlyForFlagMistakes(t *testing.T) {
	cmd := NewCommand()
	cmd.SetArgs([]string{"--port", "0"})
	var out strings.Builder
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--port 0") {
		t.Fatalf("Execute = %v", err)
	}
	if cmd.SilenceUsage {
		t.Error("usage silenced for a flag mistake")
	}
}
