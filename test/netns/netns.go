// Package netns gives tests hosts of their own: a network namespace joined
// to the root namespace by a veth pair over a private /30. The API server
// refuses loopback endpoint addresses, so webhook replicas that it must
// reach through a Service's EndpointSlice run in such hosts.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// Host is a network namespace with a veth pair to the root namespace.
type Host struct {
	// Name of the namespace, also the prefix of its links.
	Name string
	// RootIP is the address of the root side of the pair: how the host
	// reaches servers in the root namespace (the API server).
	RootIP net.IP
	// IP is the host's own address: what the root namespace dials.
	IP net.IP
}

// Supported reports why hosts cannot be made here, or nil: it needs root
// and the ip command of iproute2.
func Supported() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("network namespaces need the ip command (Debian package iproute2)")
	}
	return nil
}

// Create makes host name with the /30 10.213.<index>.0: the root side is
// .1, the host .2. name must be short (link names are at most 15 bytes).
// A leftover namespace of the same name, from a killed run, is replaced.
func Create(name string, index int) (*Host, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	if len(name)+2 > 15 {
		return nil, fmt.Errorf("netns name %q too long: at most 13 bytes", name)
	}
	if index < 0 || index > 255 {
		return nil, fmt.Errorf("netns index %d out of range 0-255", index)
	}
	root, host := Addresses(index)
	h := &Host{Name: name, RootIP: root, IP: host}
	_ = h.Delete()
	steps := [][]string{
		{"netns", "add", name},
		{"link", "add", name + "-r", "type", "veth", "peer", "name", name + "-h"},
		{"link", "set", name + "-h", "netns", name},
		{"addr", "add", h.RootIP.String() + "/30", "dev", name + "-r"},
		{"link", "set", name + "-r", "up"},
		{"-n", name, "addr", "add", h.IP.String() + "/30", "dev", name + "-h"},
		{"-n", name, "link", "set", name + "-h", "up"},
		{"-n", name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			_ = h.Delete()
			return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(s, " "), err, out)
		}
	}
	return h, nil
}

// Addresses returns the root-side and host addresses Create gives the host
// of index, so that servers in the root namespace can be told before the
// host exists which addresses to serve on.
func Addresses(index int) (root, host net.IP) {
	return net.IPv4(10, 213, byte(index), 1).To4(), net.IPv4(10, 213, byte(index), 2).To4()
}

// Command returns a command that runs inside the host.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Delete removes the host and its links; deleting a missing host is not an
// error.
func (h *Host) Delete() error {
	_ = exec.Command("ip", "link", "del", h.Name+"-r").Run()
	out, err := exec.Command("ip", "netns", "del", h.Name).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such file") {
		return fmt.Errorf("ip netns del %s: %w: %s", h.Name, err, out)
	}
	return nil
}
