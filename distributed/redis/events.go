package redis

import (
	"context"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// subscriber follows the run's pub/sub channel on one connection and wakes
// waiters: result announcements ("r:<module>") and state changes ("s").
// Every (re)subscription starts a new epoch and wakes every waiter, since
// announcements may have been missed while disconnected: waiters re-read
// from Redis then (check-subscribe-recheck).
type subscriber struct {
	ps     *goredis.PubSub
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	epoch     uint64 // incremented on every confirmed (re)subscription
	ready     chan struct{}
	announced map[string]bool
	stateSeq  uint64        // incremented on every state announcement
	changed   chan struct{} // closed and replaced on every event
}

func startSubscriber(client *goredis.Client, channel string) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{
		ps: client.Subscribe(ctx, channel), cancel: cancel, done: make(chan struct{}),
		ready: make(chan struct{}), announced: map[string]bool{}, changed: make(chan struct{}),
	}
	go s.loop(ctx)
	return s
}

func (s *subscriber) stop() {
	s.cancel()
	_ = s.ps.Close()
	<-s.done
}

func (s *subscriber) loop(ctx context.Context) {
	defer close(s.done)
	wait := 50 * time.Millisecond
	for {
		msg, err := s.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			// The next Receive reconnects and subscribes again.
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 50 * time.Millisecond
		s.mu.Lock()
		switch m := msg.(type) {
		case *goredis.Subscription:
			s.epoch++
			select {
			case <-s.ready:
			default:
				close(s.ready)
			}
		case *goredis.Message:
			if mod, ok := strings.CutPrefix(m.Payload, "r:"); ok {
				s.announced[mod] = true
			} else {
				s.stateSeq++
			}
		}
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// waitReady blocks until the first subscription is confirmed.
func (s *subscriber) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// snapshot returns the current epoch, whether module was announced, the
// state sequence, and a channel closed at the next event.
func (s *subscriber) snapshot(module string) (epoch uint64, announced bool, stateSeq uint64, next <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, s.announced[module], s.stateSeq, s.changed
}
