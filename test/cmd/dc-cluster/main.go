// Command dc-cluster runs the local multi-datacenter control plane for
// people: `dc-cluster up` starts it in the background and prints how to
// reach it, `status` shows its processes, `down` stops it, and the fault
// verbs (`stop-member`, `start-member`, `dc-down`, `dc-up`) break it on
// purpose.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kubectl-dc/kubectl-dc/test/cluster"
)

const usage = `usage: dc-cluster [--dir DIR] COMMAND [ARG]

Commands:
  up [--topology macstadium|macstadium5|travis|lb-per-dc|external-etcd|kine]  start the cluster in the background
  run -- COMMAND [ARG...]                  run COMMAND with KUBECONFIG set and the control-plane endpoint's
                                           name resolving (lb-per-dc: no DNS server names it otherwise)
  status                                   show datacenters, members and processes
  down                                     stop every process and remove DIR
  stop-member NAME | start-member NAME     stop or start one etcd member
  dc-down DC | dc-up DC                    take a whole datacenter down or back up
  add-learner NODE --datacenter DC         join a new control-plane node whose member is a learner
  promote NODE                             promote that learner to a voter once it caught up

DIR defaults to .cache/demo under the repository.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("dc-cluster", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	dir := fs.String("dir", "", "cluster directory (default .cache/demo)")
	topo := fs.String("topology", "macstadium", "macstadium (3 voters 1/1/1), macstadium5 (5 voters 2/2/1) travis (macstadium behind one HAProxy in pod-1) lb-per-dc (macstadium behind an HAProxy in every datacenter, named together as the control-plane endpoint) external-etcd (macstadium with etcd on three hosts that are no Node) or kine (two datacenters, API servers on kine over a PostgreSQL primary in pod-1 and its streaming replica in pod-2)")
	dc := fs.String("datacenter", "", "datacenter of the node add-learner joins")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		root, err := cluster.ModuleRoot()
		if err != nil {
			return err
		}
		*dir = filepath.Join(root, ".cache", "demo")
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return errors.New("missing command")
	}
	// Flags may follow the command too: dc-cluster up --topology macstadium5.
	if err := fs.Parse(rest[1:]); err != nil {
		return err
	}
	cmd, arg := rest[0], fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if cmd == "up" {
		return up(ctx, *dir, *topo)
	}
	c, err := cluster.Load(*dir)
	if err != nil {
		return err
	}
	needArg := func() error {
		if arg == "" {
			return fmt.Errorf("%s needs an argument", cmd)
		}
		return nil
	}
	switch cmd {
	case "status":
		return status(c)
	case "down":
		if err := c.Stop(); err != nil {
			return err
		}
		return os.RemoveAll(*dir)
	case "stop-member":
		if err := needArg(); err != nil {
			return err
		}
		return c.StopMember(arg)
	case "start-member":
		if err := needArg(); err != nil {
			return err
		}
		return c.StartMember(arg)
	case "dc-down":
		if err := needArg(); err != nil {
			return err
		}
		return c.DatacenterDown(ctx, arg)
	case "dc-up":
		if err := needArg(); err != nil {
			return err
		}
		return c.DatacenterUp(ctx, arg)
	case "add-learner":
		if err := needArg(); err != nil {
			return err
		}
		if *dc == "" {
			return errors.New("add-learner needs --datacenter DC: the datacenter the new control-plane node is in")
		}
		m, err := c.AddLearner(ctx, arg, *dc)
		if err != nil {
			return err
		}
		fmt.Printf("learner %s in %s at %s; promote it with: dc-cluster promote %s\n", m.Name, m.Datacenter, m.ClientURL, m.Name)
		return nil
	case "run":
		return runCommand(ctx, c, fs.Args())
	case "promote":
		if err := needArg(); err != nil {
			return err
		}
		return c.PromoteLearner(ctx, arg)
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", cmd)
}

func up(ctx context.Context, dir, topo string) error {
	if c, err := cluster.Load(dir); err == nil {
		fmt.Fprintf(os.Stderr, "a cluster already runs in %s; restarting it\n", dir)
		_ = c.Stop()
	}
	_ = os.RemoveAll(dir)
	var t cluster.Topology
	switch topo {
	case "macstadium":
		t = cluster.MacStadium()
	case "macstadium5":
		t = cluster.MacStadium5()
	case "travis":
		t = cluster.Travis()
	case "lb-per-dc":
		t = cluster.LoadBalancerPerDatacenter()
	case "external-etcd":
		t = cluster.ExternalEtcd()
	case "kine":
		t = cluster.KinePostgres()
	default:
		return fmt.Errorf("unknown --topology %q: use macstadium, macstadium5, travis, lb-per-dc, external-etcd or kine", topo)
	}
	c, err := cluster.Start(ctx, cluster.Options{Topology: t, Dir: dir, Log: os.Stderr, Detach: true})
	if err != nil {
		return err
	}
	if topo == "lb-per-dc" {
		if err := c.NameControlPlaneEndpoint(ctx); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "the kubeadm ConfigMaps name %s, which resolves to the three load balancers under `dc-cluster run -- COMMAND`\n", cluster.EndpointName)
	}
	fmt.Printf("export KUBECONFIG=%s\n", c.Kubeconfig())
	return nil
}

// runCommand runs argv against c: KUBECONFIG set, host names resolved
// through the cluster's hosts file, stdio passed through. Its exit code
// becomes dc-cluster's.
func runCommand(ctx context.Context, c *cluster.Cluster, argv []string) error {
	if len(argv) == 0 {
		return errors.New("run needs a command: dc-cluster run -- kubectl dc status")
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	cmd := c.Command(ctx, bin, argv[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.Kubeconfig())
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		os.Exit(exit.ExitCode())
	}
	return err
}

func status(c *cluster.Cluster) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "KUBECONFIG\t%s\n", c.Kubeconfig())
	fmt.Fprintln(w, "\nDATACENTER\tNODES")
	for _, dc := range c.Topology().Datacenters {
		fmt.Fprintf(w, "%s\t%s\n", dc.Name, strings.Join(c.Nodes(dc.Name), ","))
	}
	fmt.Fprintln(w, "\nETCD MEMBER\tDATACENTER\tCLIENT URL\tRUNNING")
	for _, m := range c.Members() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", m.Name, m.Datacenter, m.ClientURL, m.Running)
	}
	fmt.Fprintln(w, "\nAPI SERVER\tDATACENTER\tURL\tRUNNING")
	for _, a := range c.APIServerList() {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\n", a.Node, a.Datacenter, a.URL, a.Running)
	}
	return w.Flush()
}
