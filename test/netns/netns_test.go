package netns

import (
	"net"
	"testing"
	"time"
)

// TestHostReachesRoot proves the pair carries traffic both ways: a server
// in the root namespace on the root-side address answers a client in the
// host, which is what webhook replicas need to reach the API server.
func TestHostReachesRoot(t *testing.T) {
	if err := Supported(); err != nil {
		t.Skip(err)
	}
	h, err := Create("dcnt-probe", 250)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := h.Delete(); err != nil {
			t.Error(err)
		}
	}()
	l, err := net.Listen("tcp", net.JoinHostPort(h.RootIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err == nil {
			_, _ = conn.Write([]byte("ok"))
			_ = conn.Close()
		}
	}()
	// bash's /dev/tcp is client enough, and always present.
	cmd := h.Command("bash", "-c", "exec 3<>/dev/tcp/"+h.RootIP.String()+"/"+port(l)+"; head -c2 <&3")
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("client in the host did not get an answer from the root namespace")
	}
	if err != nil || string(out) != "ok" {
		t.Fatalf("client in %s: %q, %v", h.Name, out, err)
	}
}

func port(l net.Listener) string {
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p
}
