// Package ports hands out loopback TCP ports for the listeners the tests
// start: control-plane members and dc-webhook replicas.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Listening ports are chosen below the kernel's ephemeral range. A port
// from that range, free when checked, can be taken a moment later as the
// source port of any outgoing connection on the machine (another test's API
// server dialling its etcd), and the member that should listen on it then
// exits with "address already in use". Below the range only another
// listener can take it, and the random pick makes two clusters starting at
// once unlikely to try the same one.
const (
	lowestPort = 10000
	// defaultEphemeralLow is Linux's default when the range cannot be read.
	defaultEphemeralLow = 32768
)

var (
	portsMu sync.Mutex
	// handedOut keeps this process from giving one port to two listeners
	// before either has bound it.
	handedOut = map[int]bool{}
)

// Free returns a TCP port on 127.0.0.1 that nothing listens on, below
// the ephemeral range, never the same twice in one process; 0 if none.
func Free() int {
	portsMu.Lock()
	defer portsMu.Unlock()
	high := ephemeralLow()
	for range 200 {
		port := lowestPort + rand.IntN(high-lowestPort)
		if handedOut[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		_ = l.Close()
		handedOut[port] = true
		return port
	}
	return 0
}

// ephemeralLow returns the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeralLow
	}
	var low, high int
	if _, err := fmt.Sscan(strings.TrimSpace(string(data)), &low, &high); err != nil || low <= lowestPort+1000 {
		return defaultEphemeralLow
	}
	return low
}
