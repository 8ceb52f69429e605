package webhook

import (
	"context"
	"strings"
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
