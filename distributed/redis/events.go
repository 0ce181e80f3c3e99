package redis

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
)

// subscriber follows the run's pub/sub channel on one connection and wakes
// waiters: result announcements ("r:<module>", or "b:" for a batch), state
// changes ("s") and new queues ("q"). State changes, new queues and
// resubscriptions also wake the process's waiting claimers (onWake).
// Every (re)subscription starts a new epoch and wakes every waiter, since
// announcements may have been missed while disconnected: waiters re-read
// from Redis then (check-subscribe-recheck).
type subscriber struct {
	client  goredis.UniversalClient
	channel string
	onWake  func()     // wakes the process's waiting claimers
	psMu    sync.Mutex // guards ps, replaced after a refused subscription, and extra
	ps      *goredis.PubSub
	extra   []string // channels followed besides channel (follow)
	// followed holds, per channel of extra, a channel closed once the
	// server confirmed that subscription (guarded by mu).
	followed map[string]chan struct{}
	life     context.Context // ends when the subscriber stops
	cancel   context.CancelFunc
	done     chan struct{}
	// hub delivers the results of watched modules (watch.go).
	hub *watchHub

	mu      sync.Mutex
	epoch   uint64 // incremented on every confirmed (re)subscription
	ready   chan struct{}
	broken  chan struct{} // closed when the server refused the subscription
	refused error         // the server's refusal, set before broken closes
	// heard holds every module whose result was announced, with what
	// came along (one map: one lookup and insertion per announcement).
	heard    map[string]heardResult
	stateSeq uint64                   // incremented on every state announcement
	global   chan struct{}            // closed and replaced on state events and resubscriptions
	modules  map[string]chan struct{} // closed when that module's result is announced
	// Results announced for modules this process awaits (and does not
	// watch) are decoded here, once, on this goroutine (see decodeAwaited).
	wanted func(module string) bool
	decode func(module, payload string) (distributed.Result, error)

	// Scratch space of announce, reused from message to message (only
	// the loop's goroutine handles messages).
	taken   []takenWatch
	awaited []int
}

// heardResult is what the subscriber kept of a module's announcements.
type heardResult struct {
	payload string         // the result JSON that came along, if has
	has     bool           // a result came along (a bare name keeps an earlier one)
	dec     *decodedResult // payload decoded on arrival for an awaiter; nil: not decoded
}

// decodedResult is an announced result decoded by the subscriber.
type decodedResult struct {
	res distributed.Result
	err error
}

// startSubscriber follows channel. wanted tells the modules whose
// announced results this process will await, which decode turns into
// results as they arrive (both may be nil).
func startSubscriber(parent context.Context, client goredis.UniversalClient, channel string, onWake func(),
	wanted func(module string) bool, decode func(module, payload string) (distributed.Result, error)) *subscriber {
	ctx, cancel := context.WithCancel(parent)
	s := &subscriber{
		client: client, channel: channel, onWake: onWake, ps: client.Subscribe(ctx, channel), cancel: cancel, done: make(chan struct{}),
		ready: make(chan struct{}), broken: make(chan struct{}), heard: map[string]heardResult{}, global: make(chan struct{}), modules: map[string]chan struct{}{},
		wanted: wanted, decode: decode, followed: map[string]chan struct{}{}, life: ctx,
	}
	s.hub = newWatchHub(s)
	go s.loop(ctx)
	return s
}

func (s *subscriber) stop() {
	s.cancel()
	s.psMu.Lock()
	_ = s.ps.Close()
	s.psMu.Unlock()
	<-s.done
	s.hub.stop()
}

func (s *subscriber) loop(ctx context.Context) {
	defer close(s.done)
	wait := 50 * time.Millisecond
	for {
		s.psMu.Lock()
		ps := s.ps
		s.psMu.Unlock()
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil && serverError(err) != "" {
			// The server answered SUBSCRIBE with an error (BUSY,
			// LOADING, NOPERM...): the subscription does not exist, and
			// Receive would wait on it for ever. Start a new one.
			s.psMu.Lock()
			if ctx.Err() == nil {
				_ = s.ps.Close()
				s.ps = s.client.Subscribe(ctx, append([]string{s.channel}, s.extra...)...)
			}
			s.psMu.Unlock()
		}
		if err != nil {
			if msg := serverError(err); msg != "" && !transientReply(msg) {
				// An answer, not an outage (NOPERM on the channel,
				// NOAUTH...): waiters learn it instead of waiting.
				s.mu.Lock()
				if s.refused == nil {
					s.refused = err
					close(s.broken)
				}
				s.mu.Unlock()
			}
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
		if s.handle(msg) && s.onWake != nil {
			s.onWake()
		}
	}
}

// handle records one message or subscription confirmation, and reports
// whether waiting claimers must be woken.
func (s *subscriber) handle(msg any) (wakeClaimers bool) {
	if m, ok := msg.(*goredis.Message); ok {
		if anns, ok := announcements(m.Payload); ok {
			s.announce(anns)
			return false
		}
	}
	var resubscribed, stateChanged bool
	wake := s.record(msg, &resubscribed, &stateChanged)
	if resubscribed || stateChanged {
		s.hub.reread(resubscribed)
	}
	return wake
}

// announce records the announcements of one message and hands the watched
// results to their watches. Both locks are taken once for the whole
// message (a batch of results), the hub's inside the subscriber's: a
// watch that starts meanwhile either is found here, or finds the
// announcement recorded (WatchResults registers, then looks). Each result
// is decoded once, outside the locks: by the hub for its watches, else
// here if this process awaits it (decodeAwaited).
func (s *subscriber) announce(anns []announcement) {
	h := s.hub
	taken, awaited := s.taken[:0], s.awaited[:0]
	s.mu.Lock()
	if h != nil {
		h.mu.Lock()
	}
	for k, a := range anns {
		e := s.heard[a.module]
		if a.hasPayload {
			e.payload, e.has, e.dec = a.payload, true, nil
		}
		s.heard[a.module] = e
		var watched bool
		if h != nil {
			taken, watched = h.announcedLocked(taken, k, a)
		}
		if !watched && a.hasPayload && s.decode != nil && s.wanted != nil && s.wanted(a.module) {
			awaited = append(awaited, k) // its waiters wake once it is decoded
			continue
		}
		s.wakeLocked(a.module)
	}
	if h != nil {
		h.mu.Unlock()
	}
	s.mu.Unlock()
	if len(awaited) > 0 {
		s.decodeAwaited(anns, awaited)
	}
	if len(taken) > 0 {
		h.deliverTaken(taken, anns, nil)
		clear(taken) // let the watches go
	}
	s.taken, s.awaited = taken[:0], awaited[:0]
}

// decodeAwaited decodes the results anns[k] for k in awaited, for modules
// this process awaits and does not watch, keeps them and wakes their
// waiters: AwaitResult takes them as they are. Decoding here, on one
// goroutine whose stack has grown once, spares each awaiting goroutine
// growing its own. Results nobody here awaits stay undecoded (a worker
// hears every result of the run).
func (s *subscriber) decodeAwaited(anns []announcement, awaited []int) {
	dec := make([]decodedResult, len(awaited))
	for j, k := range awaited {
		dec[j].res, dec[j].err = s.decode(anns[k].module, anns[k].payload)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for j, k := range awaited {
		m := anns[k].module
		e := s.heard[m]
		e.dec = &dec[j]
		s.heard[m] = e
		s.wakeLocked(m)
	}
}

// wakeLocked wakes the waiters of module's result. Only they wake: with
// thousands of modules in flight, waking all on every result would cost
// quadratic work.
func (s *subscriber) wakeLocked(module string) {
	if ch, ok := s.modules[module]; ok {
		close(ch)
		delete(s.modules, module)
	}
}

// record records a subscription confirmation or state message.
func (s *subscriber) record(msg any, resubscribed, stateChanged *bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m := msg.(type) {
	case *goredis.Subscription:
		if m.Channel != s.channel {
			// A channel followed later (follow). Its first confirmation
			// releases the follower; a later one is a resubscription,
			// which may follow a gap: everyone looks again.
			ch, ok := s.followed[m.Channel]
			if !ok {
				return false
			}
			select {
			case <-ch:
			default:
				close(ch)
				return false
			}
		}
		s.epoch++
		select {
		case <-s.ready:
		default:
			close(s.ready)
		}
		// Announcements may have been missed: everyone looks again.
		s.wakeAllLocked()
		*resubscribed = true
		return true
	case *goredis.Message:
		if m.Payload == "q" {
			return true // a new queue: only claimers care
		}
		s.stateSeq++
		close(s.global)
		s.global = make(chan struct{})
		*stateChanged = true
		return true
	}
	return false
}

// follow also subscribes to channel (once), on the same connection; it is
// subscribed again with the rest after every reconnection, and messages on
// it are read like those of the run's channel. It returns once the server
// confirmed the subscription (so nothing published after that is missed),
// or with the server's refusal, or ctx's error.
func (s *subscriber) follow(ctx context.Context, channel string) error {
	return s.await(ctx, s.startFollow(ctx, channel))
}

// startFollow is follow without the wait: it returns the channel closed
// once the subscription is confirmed.
func (s *subscriber) startFollow(ctx context.Context, channel string) <-chan struct{} {
	s.mu.Lock()
	confirmed, ok := s.followed[channel]
	if !ok {
		confirmed = make(chan struct{})
		s.followed[channel] = confirmed
	}
	s.mu.Unlock()
	if !ok {
		s.psMu.Lock()
		s.extra = append(s.extra, channel)
		// An error means the connection is down: go-redis keeps the
		// channel and subscribes to it when it reconnects.
		_ = s.ps.Subscribe(ctx, channel)
		s.psMu.Unlock()
	}
	return confirmed
}

// announcements reads a result announcement, of one result or a batch.
func announcements(msg string) ([]announcement, bool) {
	if batch, ok := parseBatch(msg); ok {
		return batch, true
	}
	if mod, payload, hasPayload, ok := parseAnnouncement(msg); ok {
		return []announcement{{module: mod, payload: payload, hasPayload: hasPayload}}, true
	}
	return nil, false
}

// announced is an announced result decoded already, if ok (see
// watchHub.deliverTaken).
type announced struct {
	decodedResult
	ok bool
}

type announcement struct {
	module, payload string
	hasPayload      bool
}

// parseBatch reads "b:" and, per result, "<length>:<module><length>:<result>"
// (length -1: no result follows): the announcements of one batch of
// results (see scriptPublish). It stops at the first malformed entry,
// keeping those before it (a forged message announces nothing wrong:
// results are validated when used).
func parseBatch(msg string) ([]announcement, bool) {
	rest, ok := strings.CutPrefix(msg, "b:")
	if !ok {
		return nil, false
	}
	// next reads one length-prefixed field; n == -1 means absent.
	next := func() (string, int, bool) {
		num, tail, ok := strings.Cut(rest, ":")
		if !ok {
			return "", 0, false
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < -1 || n > len(tail) || !canonicalLength(num) {
			return "", 0, false
		}
		if n == -1 {
			rest = tail
			return "", -1, true
		}
		rest = tail[n:]
		return tail[:n], n, true
	}
	var out []announcement
	for rest != "" {
		mod, n, ok := next()
		if !ok || n < 0 {
			break
		}
		payload, n, ok := next()
		if !ok {
			break
		}
		out = append(out, announcement{module: mod, payload: payload, hasPayload: n >= 0})
	}
	return out, true
}

// canonicalLength reports whether num, which strconv.Atoi read as a
// number from -1 up, is written as strconv.Itoa writes it (no sign but
// -1's, no leading zero), without writing it again (an allocation per
// result of three digits or more).
func canonicalLength(num string) bool {
	return num == "0" || num == "-1" || num[0] >= '1' && num[0] <= '9'
}

// parseAnnouncement reads a message of the run's channel: "r:<module>"
// or "r:<module>\n<result JSON>" announces a result (ok); anything else is
// a state change. The result JSON is validated when it is used.
func parseAnnouncement(msg string) (module, payload string, hasPayload, ok bool) {
	mod, ok := strings.CutPrefix(msg, "r:")
	if !ok {
		return "", "", false, false
	}
	if name, p, cut := strings.Cut(mod, "\n"); cut {
		return name, p, true, true
	}
	return mod, "", false, true
}

func (s *subscriber) wakeAllLocked() {
	close(s.global)
	s.global = make(chan struct{})
	for mod, ch := range s.modules {
		close(ch)
		delete(s.modules, mod)
	}
}

// waitReady blocks until the first subscription is confirmed, or the
// server refused it.
func (s *subscriber) waitReady(ctx context.Context) error {
	return s.await(ctx, s.ready)
}

// await blocks until confirmed is closed, or the server refused the
// subscription, or ctx ends.
func (s *subscriber) await(ctx context.Context, confirmed <-chan struct{}) error {
	select {
	case <-confirmed:
		return nil
	case <-s.broken:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.refused
	case <-ctx.Done():
		return ctx.Err()
	}
}

// snapshot returns the current epoch, whether module was announced, the
// state sequence, and channels closed at the next event concerning module
// (nil for "") and at the next state event or resubscription.
func (s *subscriber) snapshot(module string) (epoch uint64, announced bool, stateSeq uint64, moduleNext, globalNext <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if module != "" {
		ch, ok := s.modules[module]
		if !ok {
			ch = make(chan struct{})
			s.modules[module] = ch
		}
		moduleNext = ch
	}
	_, announced = s.heard[module]
	return s.epoch, announced, s.stateSeq, moduleNext, s.global
}

// result returns the announced result of module if it was decoded on
// arrival.
func (s *subscriber) result(module string) (decodedResult, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.heard[module].dec; d != nil {
		return *d, true
	}
	return decodedResult{}, false
}

// payload returns the result JSON announced for module, if it came along.
func (s *subscriber) payload(module string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.heard[module]
	return e.payload, e.has
}

// currentEpoch returns the subscription epoch.
func (s *subscriber) currentEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// announcement returns the result JSON announced for module (has), and
// whether module's result was announced at all.
func (s *subscriber) announcement(module string) (payload string, has, announced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, announced := s.heard[module]
	return e.payload, e.has, announced
}
