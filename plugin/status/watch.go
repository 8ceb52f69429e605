package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/kubectl-dc/kubectl-dc/plugin/cmdutil"
)

// Watch timing: events are gathered for watchSettle before a new report is
// made (a datacenter going down changes many objects at once), and a
// report is made at least every watchResync, for what no object shows (an
// etcd member that stops answering while its pod stays Ready).
const (
	watchSettle = time.Second
	watchResync = 30 * time.Second
)

// watch prints a report, then a new one each time the cluster changes, until
// ctx ends (Ctrl-C), which ends it cleanly. It watches nodes and the pods
// of kube-system, the objects a datacenter going down or coming back
// changes; a report equal to the last one is not printed again.
func (o *Options) watch(ctx context.Context) error {
	if o.client == nil {
		return o.configErr
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	watches := []func(context.Context) (watch.Interface, error){
		func(ctx context.Context) (watch.Interface, error) {
			return o.watchClient.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
		},
		func(ctx context.Context) (watch.Interface, error) {
			return o.watchClient.CoreV1().Pods(metav1.NamespaceSystem).Watch(ctx, metav1.ListOptions{})
		},
	}
	for _, open := range watches {
		go follow(ctx, open, poke)
	}
	var last []byte
	resync := time.NewTicker(watchResync)
	defer resync.Stop()
	for {
		var frame bytes.Buffer
		r, err := o.report(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			fmt.Fprintf(&frame, "error: %v\n", err)
		default:
			saved := o.Out
			o.Out = &frame
			err = o.print(r)
			o.Out = saved
			if err != nil {
				return err
			}
		}
		if !bytes.Equal(frame.Bytes(), last) {
			if last != nil && !cmdutil.IsStructured(o.Output) {
				fmt.Fprintf(o.Out, "\n--- %s ---\n", time.Now().Format(time.TimeOnly))
			}
			if _, err := o.Out.Write(frame.Bytes()); err != nil {
				return err
			}
			last = frame.Bytes()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			// Let the burst of changes settle into one report.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(watchSettle):
			}
		case <-resync.C:
		}
	}
}

// follow keeps a watch open, reopening it when the server ends it or the
// API is away, and calls poke on every event.
func follow(ctx context.Context, open func(context.Context) (watch.Interface, error), poke func()) {
	backoff := time.Second
	for ctx.Err() == nil {
		w, err := open(ctx)
		if err == nil {
			backoff = time.Second
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					break
				}
				poke()
			}
			w.Stop()
			poke()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		if errors.Is(err, context.Canceled) {
			return
		}
	}
}
