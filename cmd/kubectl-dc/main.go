// Command kubectl-dc is the kubectl plugin `kubectl dc`.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-dc/kubectl-dc/plugin"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(plugin.Execute(plugin.NewCmdDC(streams), streams))
}
