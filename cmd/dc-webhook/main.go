// Command dc-webhook is the PlacementPolicy admission webhook.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/kubectl-dc/kubectl-dc/webhook"
)

func main() {
	cmd := webhook.NewCommand()
	if err := cmd.ExecuteContext(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
