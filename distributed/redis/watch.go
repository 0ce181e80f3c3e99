package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

var _ distributed.ResultWatcher = (*Coordinator)(nil)

// watchReadBatch bounds the modules one batch read (scriptResults) asks
// for: Lua's unpack has a limit, and a huge reply would hold the server.
const watchReadBatch = 512

// WatchResults implements distributed.ResultWatcher: the results of the
// watched modules are delivered by the subscriber, which decodes each
// announced result once, on its own goroutine; no goroutine waits per
// module. Redis is read only for what the subscription may have missed:
// modules not queued by this coordinator while it was subscribed, every
// watched module after a resubscription, and the run's state after a
// state announcement (Complete ends the watches). One goroutine per
// coordinator does those reads, a batch per round trip.
func (c *Coordinator) WatchResults(ctx context.Context, modules []string, deliver func(module string, r distributed.Result, err error)) error {
	if err := c.connect(); err != nil {
		return err
	}
	if err := c.failed(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, m := range modules {
		if m == "" || len(m) > distributed.MaxNameSize {
			return fmt.Errorf("%w: cannot watch the result of module %.40q: a module name has 1 to %d bytes", distributed.ErrInvalid, m, distributed.MaxNameSize)
		}
	}
	h := c.events.hub
	if err := h.start(c); err != nil {
		return err
	}
	// The results of modules queued here come on the results channel;
	// others are only named (keys.results).
	confirmed := c.events.startFollow(c.logCtx(ctx), c.keys.results())
	heard := false
	select {
	case <-confirmed:
		heard = true
	default:
	}
	epoch := c.events.currentEpoch()
	g := &watchGroup{ctx: ctx, deliver: deliver, left: len(modules)}
	var unread []string
	foreign := false
	for _, m := range modules {
		e, queued := c.enqueued.Load(m)
		if !queued {
			foreign = true
		}
		// Queued here while subscribed, in this epoch: its announcement
		// cannot have been missed. Anything else is read once.
		if mark, _ := e.(enqueueMark); !queued || !heard || !mark.heard || mark.epoch != epoch {
			unread = append(unread, m)
		}
	}
	if foreign {
		c.events.startFollow(c.logCtx(ctx), c.keys.names())
	}
	stop := context.AfterFunc(ctx, func() { h.drop(g) })
	h.add(g, modules, unread, foreign, stop)
	// Announced before the watch was registered: the subscriber kept it.
	h.catchUp(modules)
	return nil
}

// watchHub holds the watches of one coordinator (see WatchResults).
type watchHub struct {
	s *subscriber

	mu       sync.Mutex
	c        *Coordinator // set by the first watch
	stopped  bool         // the subscriber stopped: nothing is watched any more
	byModule map[string][]*watchGroup
	dirty    map[string]struct{} // watched modules to read from Redis
	// stateDirty asks the reader to read the run's state (a state
	// announcement); completed is set once it read a completed run.
	stateDirty bool
	completed  bool
	foreign    bool // a watched module was not queued here: follow keys.names
	// latch is a fatal error met on the subscriber's goroutine, which
	// must not take the coordinator's lock (Close holds it while it
	// stops the subscriber): the reader latches it.
	latch error
	kick  chan struct{}
	done  chan struct{} // closed when the reader ends; nil until it starts
}

// watchGroup is one WatchResults call.
type watchGroup struct {
	ctx     context.Context
	deliver func(module string, r distributed.Result, err error)
	modules []string
	left    int // modules not delivered yet (guarded by the hub's mu)
	ended   bool
	stop    func() bool // unregisters the AfterFunc on ctx
	// self holds g: byModule's list of a module only g watches is self[:],
	// shared by g's modules and never written (add and drop copy or
	// shrink), which spares an allocation per watched module.
	self [1]*watchGroup
}

func newWatchHub(s *subscriber) *watchHub {
	return &watchHub{s: s, byModule: map[string][]*watchGroup{}, dirty: map[string]struct{}{}, kick: make(chan struct{}, 1)}
}

// start starts the reader the first time c watches.
func (h *watchHub) start(c *Coordinator) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return errors.New("redis coordinator: cannot watch results: the coordinator is closed")
	}
	if h.c == nil {
		h.c = c
		// State announcements before now were not followed: read the state.
		h.stateDirty = true
		h.done = make(chan struct{})
		go h.run(h.s.life)
		h.kickLocked()
	}
	return nil
}

// stop ends the watches: nothing is watched any more. The reader ends by
// itself, the subscriber's context being done; it is not awaited here,
// since Close stops the subscriber holding the coordinator's lock, which
// the reader may be waiting for.
func (h *watchHub) stop() {
	if h == nil { // a subscriber made without one (tests)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
}

func (h *watchHub) kickLocked() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// add registers g for modules, to be read from Redis for unread.
func (h *watchHub) add(g *watchGroup, modules, unread []string, foreign bool, stop func() bool) {
	h.mu.Lock()
	g.stop = stop
	if g.ctx.Err() != nil || h.stopped {
		h.mu.Unlock()
		stop()
		return
	}
	g.modules = modules
	g.self[0] = g
	for _, m := range modules {
		if gs, ok := h.byModule[m]; ok {
			h.byModule[m] = append(gs[:len(gs):len(gs)], g) // a copy: gs may be another group's self
		} else {
			h.byModule[m] = g.self[:]
		}
	}
	for _, m := range unread {
		h.dirty[m] = struct{}{}
	}
	h.foreign = h.foreign || foreign
	completed := h.completed
	if len(unread) > 0 {
		h.kickLocked()
	}
	h.mu.Unlock()
	if completed {
		h.endAll(fmt.Errorf("%w: the run has completed", distributed.ErrRunEnded))
	}
}

// drop ends g's watch (its ctx is done).
func (h *watchHub) drop(g *watchGroup) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g.ended = true
	for _, m := range g.modules {
		gs := h.byModule[m]
		for k, x := range gs {
			if x == g {
				// In place: a list of two or more is this module's own
				// (add copies), and one of one is emptied, not written.
				gs = append(gs[:k], gs[k+1:]...)
				break
			}
		}
		if len(gs) == 0 {
			delete(h.byModule, m)
		} else {
			h.byModule[m] = gs
		}
	}
}

// take removes the watches of module and returns them: whoever takes a
// watch delivers it, so each is delivered once.
func (h *watchHub) take(module string) []*watchGroup {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.takeLocked(module)
}

func (h *watchHub) takeLocked(module string) []*watchGroup {
	gs, ok := h.byModule[module]
	if !ok {
		return nil
	}
	delete(h.byModule, module)
	delete(h.dirty, module)
	return gs
}

// deliverTo hands module's outcome to the watches gs.
func (h *watchHub) deliverTo(gs []*watchGroup, module string, r distributed.Result, err error) {
	for _, g := range gs {
		h.mu.Lock()
		live := !g.ended
		g.left--
		last := g.left == 0
		h.mu.Unlock()
		if live && g.ctx.Err() == nil {
			g.deliver(module, r, err)
		}
		if last {
			g.stop()
		}
	}
}

// deliver delivers module's decoded result or error, if it is watched.
func (h *watchHub) deliver(module string, r distributed.Result, err error) {
	if gs := h.take(module); gs != nil {
		h.deliverTo(gs, module, r, err)
	}
}

// takenWatch is a watch taken for the announcement anns[k] (see
// announcedLocked): whoever takes a watch delivers it, so each is
// delivered once. live and last are as deliverTo would find them.
type takenWatch struct {
	k          int
	g          *watchGroup
	live, last bool
}

// announcedLocked handles the announcement a (anns[k]) of a module, if it
// is watched: a result that came along is delivered, the watches being
// taken onto taken; a bare name is read from Redis. Both the subscriber's
// lock and h.mu are held.
func (h *watchHub) announcedLocked(taken []takenWatch, k int, a announcement) (_ []takenWatch, watched bool) {
	gs, ok := h.byModule[a.module]
	if !ok {
		return taken, false
	}
	if !a.hasPayload {
		h.dirty[a.module] = struct{}{}
		h.kickLocked()
		return taken, true
	}
	delete(h.byModule, a.module)
	delete(h.dirty, a.module)
	for _, g := range gs {
		g.left--
		taken = append(taken, takenWatch{k: k, g: g, live: !g.ended, last: g.left == 0})
	}
	return taken, true
}

// deliverTaken delivers the results of anns to the watches taken for them
// (in the order of anns), each result decoded once: dec holds those
// decoded already (by index in anns; nil: none).
func (h *watchHub) deliverTaken(taken []takenWatch, anns []announcement, dec []announced) {
	for j := 0; j < len(taken); {
		a := anns[taken[j].k]
		var d decodedResult
		if dec != nil && dec[taken[j].k].ok {
			d = dec[taken[j].k].decodedResult
		} else {
			d.res, d.err = h.decode(a.module, a.payload)
		}
		err := h.latchLater(d.err)
		for k := taken[j].k; j < len(taken) && taken[j].k == k; j++ {
			t := taken[j]
			if t.live && t.g.ctx.Err() == nil {
				t.g.deliver(a.module, d.res, err)
			}
			if t.last {
				t.g.stop()
			}
		}
	}
}

// decode decodes an announced result of module.
func (h *watchHub) decode(module, payload string) (distributed.Result, error) {
	if h.s.decode != nil {
		return h.s.decode(module, payload)
	}
	return h.c.decodeAnnounced(module, payload)
}

// catchUp delivers to the watches of modules what the subscriber heard of
// them before they were registered: a result that came along (as decoded
// on arrival, if it was), else a bare name to read from Redis.
func (h *watchHub) catchUp(modules []string) {
	var (
		taken []takenWatch
		anns  []announcement
		dec   []announced
	)
	s := h.s
	s.mu.Lock()
	h.mu.Lock()
	for _, m := range modules {
		e, heard := s.heard[m]
		if !heard {
			continue
		}
		a := announcement{module: m, payload: e.payload, hasPayload: e.has}
		var watched bool
		if taken, watched = h.announcedLocked(taken, len(anns), a); !watched || !e.has {
			continue
		}
		var d announced
		if e.dec != nil {
			d = announced{decodedResult: *e.dec, ok: true}
		}
		anns = append(anns, a)
		dec = append(dec, d)
	}
	h.mu.Unlock()
	s.mu.Unlock()
	h.deliverTaken(taken, anns, dec)
}

// latchLater has the reader latch err, a decoding error (ErrCorrupt), as
// the coordinator's fatal error, and returns it.
func (h *watchHub) latchLater(err error) error {
	if err == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.latch == nil {
		h.latch = err
		h.kickLocked()
	}
	return err
}

// reread has the reader read the run's state (a state announcement: a
// completed run ends the watches) and, with all (a resubscription, after
// which announcements may have been missed), every watched module again.
func (h *watchHub) reread(all bool) {
	if h == nil { // a subscriber made without one (tests)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c == nil {
		return
	}
	if all {
		for m := range h.byModule {
			h.dirty[m] = struct{}{}
		}
	}
	h.stateDirty = true
	h.kickLocked()
}

// endAll delivers err to every watch.
func (h *watchHub) endAll(err error) {
	h.mu.Lock()
	taken := make(map[string][]*watchGroup, len(h.byModule))
	for m := range h.byModule {
		taken[m] = h.takeLocked(m)
	}
	h.mu.Unlock()
	for m, gs := range taken {
		h.deliverTo(gs, m, distributed.Result{}, err)
	}
}

// run is the reader: it reads what the subscription may have missed, and
// retries reads that failed until they succeed (transport errors are not
// delivered), until ctx (the subscriber's life) ends.
func (h *watchHub) run(ctx context.Context) {
	defer close(h.done)
	c := h.c
	dead := c.dead
	wait := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-dead:
			h.endAll(c.failed())
			dead = nil
			continue
		case <-h.kick:
		}
		h.mu.Lock()
		latch := h.latch
		mods := make([]string, 0, len(h.dirty))
		for m := range h.dirty {
			mods = append(mods, m)
		}
		clear(h.dirty)
		stateDirty, foreign := h.stateDirty, h.foreign
		h.stateDirty = false
		h.mu.Unlock()
		if latch != nil {
			_ = c.fail(latch) // closes dead: the next turn ends every watch
		}
		err := h.read(ctx, mods, stateDirty, foreign)
		if err == nil {
			wait = 50 * time.Millisecond
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if c.failed() == nil {
			c.opts.Logger.Warn("redis coordinator: reading watched results failed; retrying", "err", err, "retry_in", wait)
		}
		// Read again what failed, after a pause.
		h.mu.Lock()
		for _, m := range mods {
			if _, ok := h.byModule[m]; ok {
				h.dirty[m] = struct{}{}
			}
		}
		h.stateDirty = h.stateDirty || stateDirty
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		h.mu.Lock()
		h.kickLocked()
		h.mu.Unlock()
	}
}

// read reads the results of mods (those still watched) and, with
// stateDirty, the run's state; a completed run ends every watch.
func (h *watchHub) read(ctx context.Context, mods []string, stateDirty, foreign bool) error {
	c := h.c
	if len(mods) > 0 {
		// What is published from now on is heard: read after that.
		sctx, cancel := context.WithTimeout(ctx, c.opts.OperationTimeout)
		err := c.follow(sctx, c.keys.results())
		if err == nil && foreign {
			err = c.follow(sctx, c.keys.names())
		}
		cancel()
		if err != nil {
			return err
		}
	}
	completed := false
	for len(mods) > 0 {
		n := min(len(mods), watchReadBatch)
		chunk := mods[:n]
		mods = mods[n:]
		args := make([]any, 0, len(chunk))
		h.mu.Lock()
		for _, m := range chunk {
			if _, watched := h.byModule[m]; watched {
				args = append(args, m)
			}
		}
		h.mu.Unlock()
		if len(args) == 0 {
			continue
		}
		v, err := c.runRetry(ctx, "reading watched results", scriptResults, args...)
		if err != nil {
			h.mu.Lock()
			for _, m := range mods { // the rest is read again too
				h.dirty[m] = struct{}{}
			}
			h.mu.Unlock()
			return err
		}
		arr, ok := v.([]any)
		if !ok || len(arr) != len(args)+1 {
			return c.fail(malformed("watched results reply", fmt.Errorf("want %d parts, got %T of %d", len(args)+1, v, len(arr))))
		}
		st, _ := arr[0].(string)
		completed = completed || st == "completed"
		for k, a := range args {
			m := a.(string)
			raw, ok := arr[k+1].(string)
			switch {
			case ok:
				gs := h.take(m)
				if gs == nil {
					continue
				}
				r, err := c.decodeResult(m, raw)
				h.deliverTo(gs, m, r, err)
			case st == "completed":
				h.deliver(m, distributed.Result{}, fmt.Errorf("%w: no result for %s", distributed.ErrRunEnded, m))
			}
		}
	}
	if stateDirty && !completed {
		s, err := c.State(ctx)
		if err != nil {
			return err
		}
		completed = s.Completed
	}
	if completed {
		h.mu.Lock()
		h.completed = true
		h.mu.Unlock()
		h.endAll(fmt.Errorf("%w: the run has completed", distributed.ErrRunEnded))
	}
	return nil
}
