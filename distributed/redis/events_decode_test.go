package redis

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
)

// TestSubscriberDecodesOnlyAwaitedResults: results announced for modules
// this process queued are decoded once, on arrival (AwaitResult then takes
// them as they are); the others stay raw, undecoded.
func TestSubscriberDecodesOnlyAwaitedResults(t *testing.T) {
	var decodedFor []string
	s := &subscriber{heard: map[string]heardResult{}, global: make(chan struct{}), modules: map[string]chan struct{}{},
		wanted: func(m string) bool { return m == "mine" || m == "bad" },
		decode: func(m, payload string) (distributed.Result, error) {
			decodedFor = append(decodedFor, m)
			if payload == "garbage" {
				return distributed.Result{}, errors.New("garbage")
			}
			return distributed.Result{Module: m, Reason: payload}, nil
		}}
	msg := encodeBatch([]announcement{{module: "mine", payload: "p1", hasPayload: true}, {module: "other", payload: "p2", hasPayload: true},
		{module: "bad", payload: "garbage", hasPayload: true}})
	if s.handle(&goredis.Message{Payload: msg}) {
		t.Error("a result announcement woke the claimers")
	}
	if len(decodedFor) != 2 || decodedFor[0] != "mine" || decodedFor[1] != "bad" {
		t.Fatalf("decoded %v, want [mine bad]", decodedFor)
	}
	if d, ok := s.result("mine"); !ok || d.err != nil || d.res.Reason != "p1" {
		t.Errorf("result of mine: %+v, %v", d, ok)
	}
	if d, ok := s.result("bad"); !ok || d.err == nil {
		t.Errorf("result of bad: %+v, %v; want its decoding error", d, ok)
	}
	if _, ok := s.result("other"); ok {
		t.Error("a result nobody here awaits was decoded")
	}
	if p, ok := s.payload("other"); !ok || p != "p2" {
		t.Errorf("payload of other: %q, %v", p, ok)
	}
	for _, m := range []string{"mine", "other", "bad"} {
		if _, announced, _, _, _ := s.snapshot(m); !announced {
			t.Errorf("%s not announced", m)
		}
	}
	// A single announcement goes the same way.
	s.handle(&goredis.Message{Payload: "r:mine2\nx"})
	if _, announced, _, _, _ := s.snapshot("mine2"); !announced || len(decodedFor) != 2 {
		t.Errorf("single announcement: announced %v, decoded %v", announced, decodedFor)
	}
}

// testSubscriber is a subscriber on channel "ch" without a connection,
// with a hub, whose messages the test hands to handle.
func testSubscriber(decode func(m, payload string) (distributed.Result, error)) *subscriber {
	s := &subscriber{channel: "ch", heard: map[string]heardResult{}, global: make(chan struct{}), modules: map[string]chan struct{}{},
		ready: make(chan struct{}), broken: make(chan struct{}), followed: map[string]chan struct{}{},
		wanted: func(string) bool { return true }, decode: decode}
	s.hub = newWatchHub(s)
	return s
}

// TestBareAnnouncementKeepsTheHeardResult: a module's bare announcement
// (its name only, as on the names channel) after one that came with its
// result keeps that result, decoded or not, for AwaitResult and for a
// watch started later.
func TestBareAnnouncementKeepsTheHeardResult(t *testing.T) {
	decodes := 0
	s := testSubscriber(func(m, payload string) (distributed.Result, error) {
		decodes++
		return distributed.Result{Module: m, Reason: payload}, nil
	})
	s.handle(&goredis.Message{Channel: "ch", Payload: encodeBatch([]announcement{{module: "m", payload: "p1", hasPayload: true}})})
	s.handle(&goredis.Message{Channel: "ch", Payload: "r:m"})
	s.handle(&goredis.Message{Channel: "ch", Payload: encodeBatch([]announcement{{module: "m"}, {module: "bare"}})})
	if d, ok := s.result("m"); !ok || d.res.Reason != "p1" {
		t.Errorf("decoded result of m after bare announcements: %+v, %v; want the one heard first", d, ok)
	}
	if p, has, announced := s.announcement("m"); !has || !announced || p != "p1" {
		t.Errorf("announcement of m: %q, %v, %v; want p1 kept", p, has, announced)
	}
	if p, has, announced := s.announcement("bare"); has || !announced || p != "" {
		t.Errorf("announcement of bare: %q, %v, %v; want announced without a result", p, has, announced)
	}
	// A later result replaces the kept one, decoded anew.
	s.handle(&goredis.Message{Channel: "ch", Payload: "r:m\np2"})
	if d, ok := s.result("m"); !ok || d.res.Reason != "p2" {
		t.Errorf("decoded result of m after a new one: %+v, %v; want p2", d, ok)
	}
	if decodes != 2 {
		t.Errorf("%d decodes, want 2 (bare announcements decode nothing)", decodes)
	}
}

// TestRereadAfterStateOrResubscription: a state announcement has the
// hub's reader read the run's state only; a resubscription (announcements
// may have been missed) the state and every watched module; a new queue
// neither.
func TestRereadAfterStateOrResubscription(t *testing.T) {
	s := testSubscriber(nil)
	h := s.hub
	h.c = &Coordinator{} // as if started; its reader is not running
	g := &watchGroup{ctx: context.Background(), modules: []string{"a", "b"}, left: 2}
	h.byModule["a"], h.byModule["b"] = []*watchGroup{g}, []*watchGroup{g}
	look := func() (dirty []string, state, kicked bool) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for m := range h.dirty {
			dirty = append(dirty, m)
		}
		slices.Sort(dirty)
		state = h.stateDirty
		clear(h.dirty)
		h.stateDirty = false
		select {
		case <-h.kick:
			kicked = true
		default:
		}
		return dirty, state, kicked
	}
	for _, c := range []struct {
		msg         any
		dirty       []string
		state, wake bool
	}{
		{&goredis.Message{Channel: "ch", Payload: "s"}, nil, true, true},
		{&goredis.Subscription{Kind: "subscribe", Channel: "ch", Count: 1}, []string{"a", "b"}, true, true},
		{&goredis.Message{Channel: "ch", Payload: "q"}, nil, false, false},
		{&goredis.Message{Channel: "ch", Payload: "cancelled"}, nil, true, true},
		{&goredis.Subscription{Kind: "subscribe", Channel: "ch", Count: 1}, []string{"a", "b"}, true, true},
	} {
		s.handle(c.msg)
		dirty, state, kicked := look()
		if !slices.Equal(dirty, c.dirty) || state != c.state || kicked != c.wake {
			t.Errorf("after %+v: dirty %v, state %v, kicked %v; want %v, %v, %v", c.msg, dirty, state, kicked, c.dirty, c.state, c.wake)
		}
	}
}

// TestBatchLengthsParsedWithoutAllocating: a batch announcement's lengths
// are checked to be written as strconv.Itoa writes them (so a message
// reads one way only) without writing them again: parsing allocates the
// announcements' slice only.
func TestBatchLengthsParsedWithoutAllocating(t *testing.T) {
	for _, num := range []string{"0", "00", "-0", "+0", "1", "+1", "01", "-1", "-01", "+-1", "10", "123", "0123", "-2"} {
		n, err := strconv.Atoi(num)
		if err != nil || n < -1 {
			continue
		}
		if got, want := canonicalLength(num), strconv.Itoa(n) == num; got != want {
			t.Errorf("canonicalLength(%q) = %v, want %v", num, got, want)
		}
	}
	msg := encodeBatch([]announcement{{module: "m", payload: strings.Repeat("x", 300), hasPayload: true}})
	if allocs := testing.AllocsPerRun(100, func() { _, _ = parseBatch(msg) }); allocs != 1 {
		t.Errorf("parsing a batch of one made %v allocations, want 1", allocs)
	}
}

// TestWatchListsSharedWithoutAllocating: registering a watch allocates
// nothing per module only it watches (the module's list of watches is the
// group's own one-element list); lists of modules several watch are their
// own, so dropping one watch leaves the others' lists as they were.
func TestWatchListsSharedWithoutAllocating(t *testing.T) {
	h := testSubscriber(nil).hub
	h.c = &Coordinator{} // as if started; its reader is not running
	mods := make([]string, 256)
	for k := range mods {
		mods[k] = "m" + strconv.Itoa(k)
	}
	stop := func() bool { return true }
	allocs := testing.AllocsPerRun(20, func() {
		g := &watchGroup{ctx: context.Background(), left: len(mods)}
		h.add(g, mods, nil, false, stop)
		h.drop(g)
	})
	if allocs >= 10 {
		t.Errorf("watching %d modules and dropping the watch made %v allocations", len(mods), allocs)
	}
	group := func(modules ...string) *watchGroup {
		g := &watchGroup{ctx: context.Background(), left: len(modules)}
		h.add(g, modules, nil, false, stop)
		return g
	}
	g1 := group("a", "b")
	g2 := group("a")
	g3 := group("b")
	g4 := group("b")
	want := func(m string, gs ...*watchGroup) {
		t.Helper()
		h.mu.Lock()
		defer h.mu.Unlock()
		if got := h.byModule[m]; !slices.Equal(got, gs) {
			t.Errorf("watches of %s: %v, want %v", m, got, gs)
		}
	}
	want("a", g1, g2)
	want("b", g1, g3, g4)
	h.drop(g3)
	want("a", g1, g2)
	want("b", g1, g4)
	h.drop(g1)
	want("a", g2)
	want("b", g4)
	if g1.self[0] != g1 || g2.self[0] != g2 || g3.self[0] != g3 || g4.self[0] != g4 {
		t.Error("a group's own list was written")
	}
	h.drop(g2)
	h.drop(g4)
	want("a")
	want("b")
	if len(h.byModule) != 0 {
		t.Errorf("%d modules watched after every watch was dropped", len(h.byModule))
	}
}

// TestWatchedResultsDecodedOnceByTheHub: the result of a watched module is
// decoded once, by the hub for its watches, without asking whether this
// process awaits it (a lookup per result); that of an awaited module
// nobody watches is decoded and kept for AwaitResult.
func TestWatchedResultsDecodedOnceByTheHub(t *testing.T) {
	var decoded, asked []string
	s := testSubscriber(func(m, payload string) (distributed.Result, error) {
		decoded = append(decoded, m)
		return distributed.Result{Module: m, Reason: payload}, nil
	})
	s.wanted = func(m string) bool {
		asked = append(asked, m)
		return true
	}
	h := s.hub
	h.c = &Coordinator{} // as if started; its reader is not running
	var got []string
	g := &watchGroup{ctx: context.Background(), deliver: func(m string, r distributed.Result, err error) {
		got = append(got, m+"="+r.Reason)
	}}
	h.add(g, []string{"w1", "w2"}, nil, false, func() bool { return true })
	s.handle(&goredis.Message{Channel: "ch", Payload: encodeBatch([]announcement{
		{module: "w1", payload: "p1", hasPayload: true}, {module: "a", payload: "pa", hasPayload: true}, {module: "w2", payload: "p2", hasPayload: true}})})
	if !slices.Equal(got, []string{"w1=p1", "w2=p2"}) {
		t.Errorf("watch got %v", got)
	}
	slices.Sort(decoded)
	if !slices.Equal(decoded, []string{"a", "w1", "w2"}) || !slices.Equal(asked, []string{"a"}) {
		t.Errorf("decoded %v, asked whether awaited %v; want each decoded once, only a asked", decoded, asked)
	}
	if d, ok := s.result("a"); !ok || d.res.Reason != "pa" {
		t.Errorf("result of a: %+v, %v; want it kept decoded", d, ok)
	}
	if _, ok := s.result("w1"); ok {
		t.Error("a watched result was kept decoded")
	}
}
