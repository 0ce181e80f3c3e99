package redis

import (
	"errors"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/distributed"
)

// TestSubscriberDecodesOnlyAwaitedResults: results announced for modules
// this process queued are decoded once, on arrival (AwaitResult then takes
// them as they are); the others stay raw, undecoded.
func TestSubscriberDecodesOnlyAwaitedResults(t *testing.T) {
	var decodedFor []string
	s := &subscriber{announced: map[string]bool{}, payloads: map[string]string{}, global: make(chan struct{}), modules: map[string]chan struct{}{},
		decoded: map[string]decodedResult{},
		wanted:  func(m string) bool { return m == "mine" || m == "bad" },
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
