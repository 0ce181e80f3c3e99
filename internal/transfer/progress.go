package transfer

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Progress counts the bytes of one transfer while it runs; it is safe for
// concurrent use, and a nil *Progress counts nothing.
//
// Every byte goes through two passes: an upload reads and hashes a file,
// then sends it (or finds it in the store); a download fetches a blob into
// the instance's cache (or finds it there), then writes and verifies it
// under the target directory. Done counts each pass half, so that it
// grows steadily from 0 to the artifact's size however the time is split
// between the passes.
type Progress struct {
	total         atomic.Int64
	first, second atomic.Int64
}

// Snapshot returns the bytes done (see Progress) and the artifact's size
// (0 until the files are known).
func (p *Progress) Snapshot() (done, total int64) {
	if p == nil {
		return 0, 0
	}
	total = p.total.Load()
	done = (p.first.Load() + p.second.Load()) / 2
	return min(done, total), total
}

func (p *Progress) setTotal(n int64) {
	if p != nil {
		p.total.Store(n)
	}
}

func (p *Progress) addFirst(n int64) {
	if p != nil {
		p.first.Add(n)
	}
}

func (p *Progress) addSecond(n int64) {
	if p != nil {
		p.second.Add(n)
	}
}

// counting returns r, counting what it yields with add (p nil: r itself).
func (p *Progress) counting(r io.Reader, add ...func(*Progress, int64)) io.Reader {
	if p == nil {
		return r
	}
	return &countingReader{r: r, p: p, add: add}
}

type countingReader struct {
	r   io.Reader
	p   *Progress
	add []func(*Progress, int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if n > 0 {
		for _, add := range c.add {
			add(c.p, int64(n))
		}
	}
	return n, err
}

// Reporter logs a long transfer's progress as lines, for output that is
// not a terminal (CI logs): no line before First has passed; then a line
// each time the transfer has reached another quarter, at most one per
// First, and at least one per Every. A transfer of an hour thus writes at
// most 3 + 60 lines with the defaults.
type Reporter struct {
	// Log writes one line: bytes done and total, and the average rate
	// in bytes per second since the transfer started.
	Log func(done, total, rate int64)
	// First is the quiet time at the start and between quarter lines
	// (default 10 s); Every the longest time between lines (default 60 s).
	First, Every time.Duration
	// Ticks and Now replace the clock (tests); nil: a ticker of one
	// second and time.Now.
	Ticks <-chan time.Time
	Now   func() time.Time
}

// Report starts logging p's progress as r says until the returned
// function is called; that function waits for the logging goroutine to
// end.
func (p *Progress) Report(r Reporter) (stop func()) {
	if r.First <= 0 {
		r.First = 10 * time.Second
	}
	if r.Every <= 0 {
		r.Every = time.Minute
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	ticks := r.Ticks
	var ticker *time.Ticker
	if ticks == nil {
		ticker = time.NewTicker(time.Second)
		ticks = ticker.C
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	policy := reportPolicy{first: r.First, every: r.Every, start: r.Now()}
	policy.last = policy.start
	go func() {
		defer close(ended)
		for {
			select {
			case <-done:
				return
			case <-ticks:
				now := r.Now()
				d, t := p.Snapshot()
				if policy.due(now, d, t) {
					r.Log(d, t, rateOf(d, now.Sub(policy.start)))
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			<-ended
			if ticker != nil {
				ticker.Stop()
			}
		})
	}
}

// reportPolicy decides when Reporter writes a line.
type reportPolicy struct {
	first, every time.Duration
	start, last  time.Time
	quarter      int64 // the quarter reached at the last line
}

func (r *reportPolicy) due(now time.Time, done, total int64) bool {
	if total <= 0 || done >= total || now.Sub(r.start) < r.first {
		return false
	}
	q := done * 4 / total
	since := now.Sub(r.last)
	if (q > r.quarter && since >= r.first) || since >= r.every {
		r.last, r.quarter = now, q
		return true
	}
	return false
}

func rateOf(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}
