package redis

import (
	"strconv"
	"testing"
	"time"

	"github.com/modpipe/modpipe/distributed"
)

// BenchmarkPublishArgs is the client's work per result of a no-op module
// before a publish script: validation, the result JSON, the arguments.
func BenchmarkPublishArgs(b *testing.B) {
	c := &Coordinator{keys: newKeys("modpipe", "bench"), dead: make(chan struct{})}
	rs := make([]distributed.Result, 8)
	for k := range rs {
		m := "module-" + strconv.Itoa(k)
		rs[k] = distributed.Result{Module: m, Status: distributed.StatusSucceeded, Value: []byte(`{}`), Attempts: 1,
			Duration: time.Microsecond, QueueWait: 3 * time.Millisecond, Log: []byte("ok\n"),
			Lease: distributed.Lease{Module: m, Attempt: 1, Holder: 2, Session: "0123456789abcdef01234567", Token: "89abcdef0123456789abcdef." + strconv.Itoa(k+1)}}
	}
	errs := make([]error, len(rs))
	for b.Loop() {
		c.publishArgs(rs, errs, make([]any, 0, 2+5*len(rs)))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rs)), "ns/result")
}

// BenchmarkEnqueueArgs is the client's work per assignment before an
// enqueue script (batches of 256, one requirement set).
func BenchmarkEnqueueArgs(b *testing.B) {
	as := make([]distributed.Assignment, 256)
	for i := range as {
		as[i] = distributed.Assignment{Module: "module-" + strconv.Itoa(i), Attempt: 1, Requires: []string{"linux"}, Priority: int64(i % 7)}
	}
	for b.Loop() {
		if _, _, err := enqueueArgs(as); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(as)), "ns/assignment")
}
