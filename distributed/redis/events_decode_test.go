package redis

import (
	"context"
	"errors"
	"slices"
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
