package live

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestTransferText(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{0, 0, time.Second, "preparing"},
		{0, 3 << 20, time.Second, "0 B / 3.0 MiB  0%"},
		{512 << 20, 1 << 30, 4 * time.Second, "512.0 MiB / 1.0 GiB  50%  128.0 MiB/s"},
		{1 << 30, 1 << 30, 0, "1.0 GiB / 1.0 GiB  100%"},
	} {
		got := transferText(func() (int64, int64) { return c.done, c.total }, c.elapsed)
		if got != c.want {
			t.Errorf("%d of %d after %s: %q, want %q", c.done, c.total, c.elapsed, got, c.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the view's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTransferLine: a transfer's line is drawn with its label and
// progress while it runs; ending it, finishing its module and stopping the
// view leave no goroutine behind.
func TestTransferLine(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out syncBuffer
	v := start(&out, 100)
	v.Started(1, "build")
	asked := make(chan struct{}, 1)
	end := v.Transfer(1, "↑ app", func() (int64, int64) {
		select {
		case asked <- struct{}{}:
		default:
		}
		return 3 << 20, 4 << 20
	})
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "↑ app") || !strings.Contains(out.String(), "3.0 MiB / 4.0 MiB  75%") {
		select {
		case <-asked: // drawn once more; look again
		case <-deadline:
			t.Fatalf("the transfer line never showed:\n%q", out.String())
		}
	}
	end()
	end()
	v.Transfer(1, "↓ other", func() (int64, int64) { return 0, 0 }) // ended by Finished
	v.Finished(1)
	v.Transfer(2, "↓ left", func() (int64, int64) { return 0, 0 }) // ended by Stop
	v.Stop()
}

// TestTransferAfterStop: a transfer that starts after the view stopped (a
// module abandoned after its grace period uploading while the program
// ends) draws nothing and neither panics nor blocks.
func TestTransferAfterStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out syncBuffer
	v := start(&out, 100)
	v.Stop()
	end := v.Transfer(1, "↑ late", func() (int64, int64) { return 1, 2 })
	end()
	end()
	if strings.Contains(out.String(), "late") {
		t.Errorf("a transfer after Stop was drawn:\n%q", out.String())
	}
}

// A module that starts after Stop draws nothing and does not panic (mpb's
// New panics once the view has stopped).
func TestStartedAfterStop(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out syncBuffer
	v := start(&out, 100)
	v.Stop()
	v.Started(1, "late")
	v.Where(1, "instance 2")
	v.Finished(1)
	if strings.Contains(out.String(), "late") {
		t.Errorf("a module started after Stop was drawn:\n%q", out.String())
	}
}
