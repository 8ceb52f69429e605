package plugin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// Shells `kubectl dc completion` writes scripts for.
const (
	shellBash       = "bash"
	shellZsh        = "zsh"
	shellFish       = "fish"
	shellPowerShell = "powershell"
)

var completionShells = []string{shellBash, shellZsh, shellFish, shellPowerShell}

// CompletionOptions holds the argument of `kubectl dc completion`.
type CompletionOptions struct {
	// Shell is one of bash, zsh, fish or powershell.
	Shell string
	// root is the command tree the script completes: the root of the
	// completion command, so the script always matches the binary.
	root *cobra.Command

	genericiooptions.IOStreams
}

// NewCompletionOptions returns empty CompletionOptions writing to streams.
func NewCompletionOptions(streams genericiooptions.IOStreams) *CompletionOptions {
	return &CompletionOptions{IOStreams: streams}
}

// NewCmdCompletion returns `kubectl dc completion SHELL`. It replaces cobra's
// default completion command so that its help explains both ways to complete
// the plugin: as `kubectl-dc` and, through kubectl_complete-dc, as `kubectl dc`.
func NewCmdCompletion(streams genericiooptions.IOStreams) *cobra.Command {
	o := NewCompletionOptions(streams)
	cmd := &cobra.Command{
		Use:   "completion " + strings.Join(completionShells, "|"),
		Short: "Print a shell completion script for kubectl dc",
		Long: `Print a shell completion script for kubectl dc.

There are two ways to get completion, and they can be used together.

1. "kubectl dc <TAB>" (kubectl v1.26 or later): kubectl completes a plugin
   by running the executable kubectl_complete-dc found on PATH. It ships in
   the release archive next to kubectl-dc and runs "kubectl-dc __complete".
   With krew, link it next to the plugin once:

     ln -s "${KREW_ROOT:-$HOME/.krew}/store/dc/VERSION/kubectl_complete-dc" \
       "${KREW_ROOT:-$HOME/.krew}/bin/"

   where VERSION is what "kubectl dc version" prints.
   kubectl's own completion must be loaded ("kubectl completion --help").

2. "kubectl-dc <TAB>": load the script this command prints.

  bash (needs the bash-completion package):
    source <(kubectl-dc completion bash)
    # for every new shell:
    kubectl-dc completion bash > ~/.local/share/bash-completion/completions/kubectl-dc

  zsh:
    source <(kubectl-dc completion zsh)
    # for every new shell (compinit must be enabled):
    kubectl-dc completion zsh > "${fpath[1]}/_kubectl-dc"

  fish:
    kubectl-dc completion fish | source
    # for every new shell:
    kubectl-dc completion fish > ~/.config/fish/completions/kubectl-dc.fish

  powershell:
    kubectl-dc completion powershell | Out-String | Invoke-Expression
    # for every new shell, add the line above to $PROFILE.`,
		ValidArgs:             completionShells,
		DisableFlagsInUseLine: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			cmd.SilenceUsage = true
			return o.Run()
		},
	}
	return cmd
}

// Complete takes the shell from args and the command tree from cmd.
func (o *CompletionOptions) Complete(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("completion needs exactly one shell argument, got %d: use one of %s", len(args), strings.Join(completionShells, ", "))
	}
	o.Shell = args[0]
	o.root = cmd.Root()
	return nil
}

// Validate checks the shell name.
func (o *CompletionOptions) Validate() error {
	if slices.Contains(completionShells, o.Shell) {
		return nil
	}
	return fmt.Errorf("unsupported shell %q: use one of %s", o.Shell, strings.Join(completionShells, ", "))
}

// Run writes the completion script, with descriptions, to Out.
func (o *CompletionOptions) Run() error {
	switch o.Shell {
	case shellBash:
		return o.root.GenBashCompletionV2(o.Out, true)
	case shellZsh:
		return o.root.GenZshCompletion(o.Out)
	case shellFish:
		return o.root.GenFishCompletion(o.Out, true)
	case shellPowerShell:
		return o.root.GenPowerShellCompletionWithDesc(o.Out)
	}
	return fmt.Errorf("unsupported shell %q: use one of %s", o.Shell, strings.Join(completionShells, ", "))
}
