package webhook

import "sync"

// kicker asks a loop for work: Kick never blocks, and kicks that come
// while one is pending coalesce into it, so that every Node heartbeat and
// policy change may kick. The zero value is ready.
type kicker struct {
	once sync.Once
	ch   chan struct{}
}

// kicks is the channel the loop receives the kicks on.
func (k *kicker) kicks() chan struct{} {
	k.once.Do(func() { k.ch = make(chan struct{}, 1) })
	return k.ch
}

// Kick asks for one more round of work.
func (k *kicker) Kick() {
	select {
	case k.kicks() <- struct{}{}:
	default:
	}
}
