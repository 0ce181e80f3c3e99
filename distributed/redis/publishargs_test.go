package redis

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// TestPublishArgsLayout: publishArgs lays out each valid result as
// luaPublish reads it (module, lease head, JSON, "<length>:<module>",
// "<length>:" or "-1:" for a result too large to announce), skips invalid
// ones, and makes its strings in one piece per batch: a few allocations
// per result fewer than one string each (which made 14 per result).
func TestPublishArgsLayout(t *testing.T) {
	c := &Coordinator{keys: newKeys("modpipe", "layout"), dead: make(chan struct{})}
	lease := func(m, token string) distributed.Lease {
		return distributed.Lease{Module: m, Attempt: 1, Holder: 2, Session: "s", Token: token}
	}
	big := `"` + strings.Repeat("x", maxAnnounced) + `"`
	rs := []distributed.Result{
		{Module: "a", Lease: lease("a", "abc.1"), Status: distributed.StatusSucceeded, Value: []byte(`{}`), Attempts: 1, Log: []byte("ok\n")},
		{Module: "bad", Lease: lease("bad", ""), Status: distributed.StatusSucceeded, Value: []byte(`{}`)}, // no token: invalid
		{Module: "quoted", Lease: lease("quoted", `x"y`), Status: distributed.StatusSkipped, Reason: "r"},
		{Module: "big", Lease: lease("big", "abc.2"), Status: distributed.StatusSucceeded, Value: []byte(big), Duration: time.Second},
	}
	errs := make([]error, len(rs))
	args, sent := c.publishArgs(rs, errs, nil)
	if errs[1] == nil || errs[0] != nil || errs[2] != nil || errs[3] != nil || len(sent) != 3 || len(args) != 2+5*3 {
		t.Fatalf("errs %v, sent %v, %d args", errs, sent, len(args))
	}
	for k, i := range sent {
		r := rs[i]
		g := args[2+5*k : 2+5*k+5]
		payload, _ := g[2].(string)
		var w wireResult
		if err := json.Unmarshal([]byte(payload), &w); err != nil || w.Module != r.Module || w.Nonce == "" {
			t.Errorf("result %s: JSON %.80s (%v)", r.Module, payload, err)
		}
		head, size := `{"token":"`+r.Lease.Token+`"`, strconv.Itoa(len(payload))+":"
		if r.Module == "quoted" {
			head = "!"
		}
		if r.Module == "big" {
			size = "-1:"
		}
		if g[0] != r.Module || g[1] != head || g[3] != strconv.Itoa(len(r.Module))+":"+r.Module || g[4] != size {
			t.Errorf("result %s laid out as %q, %q, ..., %q, %q", r.Module, g[0], g[1], g[3], g[4])
		}
	}

	batch := make([]distributed.Result, 8)
	for k := range batch {
		m := "module-" + strconv.Itoa(k)
		batch[k] = distributed.Result{Module: m, Lease: lease(m, "0123456789abcdef1."+strconv.Itoa(k)), Status: distributed.StatusSucceeded, Value: []byte(`{}`), Attempts: 1, Log: []byte("ok\n")}
	}
	errs = make([]error, len(batch))
	allocs := testing.AllocsPerRun(20, func() { c.publishArgs(batch, errs, make([]any, 0, 2+5*len(batch))) })
	if per := allocs / float64(len(batch)); per > 12 {
		t.Errorf("publishArgs: %.2f allocations per result, want at most 12", per)
	}
}
