package webhook

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDelayedCancel(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	ctx := delayedCancel(parent, 200*time.Millisecond, func() { close(stopped) })
	cancel()
	<-stopped
	if ctx.Err() != nil {
		t.Fatal("the serving context ended with its parent: requests in flight and those still routed here would fail")
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the serving context never ended after the delay")
	}
}

func TestDelayedCancelWithoutDelay(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	ctx := delayedCancel(parent, 0, func() { t.Error("onStop called without a delay") })
	if ctx != parent {
		t.Fatal("delay 0 must serve on the parent context itself")
	}
	cancel()
}

func TestValidateShutdownDelay(t *testing.T) {
	o := NewOptions()
	if o.ShutdownDelay <= 0 {
		t.Fatalf("default --shutdown-delay %s: a deployed replica must outlive its endpoint", o.ShutdownDelay)
	}
	o.ShutdownDelay = -time.Second
	err := o.Validate()
	if err == nil || !strings.Contains(err.Error(), "--shutdown-delay") {
		t.Fatalf("negative --shutdown-delay: got %v", err)
	}
}

// TestConnectionsCloseWhileStopping: a client keeps reusing one connection
// while the replica serves; once it is stopping, every answer closes its
// connection, so none is left idle in the client's pool when the server
// goes away.
func TestConnectionsCloseWhileStopping(t *testing.T) {
	stopping, stop := context.WithCancel(context.Background())
	defer stop()
	h := &Handler{Stopping: stopping}
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(h.closingWhenStopping(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "{}")
	})))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	client := srv.Client()
	post := func() *http.Response {
		t.Helper()
		resp, err := client.Post(srv.URL, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	opened := func() int {
		mu.Lock()
		defer mu.Unlock()
		return conns
	}
	for range 3 {
		if resp := post(); resp.Close {
			t.Fatal("a serving replica closed its connection")
		}
	}
	if n := opened(); n != 1 {
		t.Fatalf("%d connections for 3 calls while serving, want 1 kept alive", n)
	}
	stop()
	for range 3 {
		if resp := post(); !resp.Close {
			t.Fatal("a stopping replica kept its connection open")
		}
	}
	// The first call still reuses the pooled connection, and closes it.
	if n := opened(); n != 3 {
		t.Fatalf("%d connections after 3 more calls while stopping, want 3: each call after the first on a new one", n)
	}
}
