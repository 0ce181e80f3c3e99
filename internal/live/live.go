// Package live shows the running modules in an interactive terminal: one
// line per module with its name, where it runs and how long it has been
// running, below the module groups printed so far. It is built on mpb; when
// the output is not a terminal (CI, pipes) modpipe does not use it.
package live

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// Enabled reports whether a live view suits out: a terminal, not CI.
func Enabled(out io.Writer, getenv func(string) string) bool {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	if getenv("MODPIPE_LIVE") == "1" {
		return true
	}
	return getenv("CI") == "" && getenv("GITHUB_ACTIONS") != "true" && getenv("TERM") != "dumb"
}

// View is the live view of one run.
type View struct {
	p *mpb.Progress

	mu    sync.Mutex
	bars  map[int]*mpb.Bar
	where map[int]string
	// transfers are the lines of running transfers, by module id.
	transfers map[int]map[*mpb.Bar]bool
	// stopped is set by Stop: later transfers draw nothing.
	stopped bool
}

// Start starts a view writing to out.
func Start(out io.Writer) *View { return start(out, 1) }

// start starts a view; width is the spinner's, and the whole line's when
// out is not a terminal (tests).
func start(out io.Writer, width int) *View {
	return &View{
		p:         mpb.New(mpb.WithOutput(out), mpb.WithWidth(width), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh()),
		bars:      map[int]*mpb.Bar{},
		where:     map[int]string{},
		transfers: map[int]map[*mpb.Bar]bool{},
	}
}

// Writer prints above the live lines (module groups go through it).
func (v *View) Writer() io.Writer { return v.p }

// Started shows module id as running.
func (v *View) Started(id int, name string) {
	// Add, not New: New panics once Stop has waited for the view, and a
	// module may start after Stop (one abandoned after its grace period).
	b, err := v.p.Add(0, mpb.SpinnerStyle("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏").Build(),
		mpb.PrependDecorators(decor.Name(name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Any(func(decor.Statistics) string {
				v.mu.Lock()
				defer v.mu.Unlock()
				return v.where[id]
			}, decor.WCSyncSpaceR),
			decor.Elapsed(decor.ET_STYLE_GO),
		),
	)
	if err != nil {
		return // the view has stopped
	}
	v.mu.Lock()
	if v.stopped {
		// Stop already removed the lines and waits for them to end.
		v.mu.Unlock()
		b.Abort(true)
		return
	}
	v.bars[id] = b
	v.mu.Unlock()
}

// Where says where module id runs ("instance 2").
func (v *View) Where(id int, where string) {
	v.mu.Lock()
	v.where[id] = where
	v.mu.Unlock()
}

// Finished removes module id's line.
func (v *View) Finished(id int) {
	v.mu.Lock()
	b := v.bars[id]
	delete(v.bars, id)
	transfers := v.transfers[id]
	delete(v.transfers, id)
	v.mu.Unlock()
	if b != nil {
		b.Abort(true)
	}
	for t := range transfers {
		t.Abort(true)
	}
}

// Stop removes the view; output continues below what was printed.
func (v *View) Stop() {
	v.mu.Lock()
	v.stopped = true
	for id, b := range v.bars {
		b.Abort(true)
		delete(v.bars, id)
	}
	for id, ts := range v.transfers {
		for t := range ts {
			t.Abort(true)
		}
		delete(v.transfers, id)
	}
	v.mu.Unlock()
	v.p.Wait()
}

// Transfer shows a line for a transfer of module id, such as
// "  ↑ app (build)  412.0 MiB / 1.0 GiB  40%  61.2 MiB/s", until the
// returned function is called (or the module finishes). label names the
// transfer ("↑ app"); progress returns the bytes done and the total, and
// is called from the view's goroutine.
func (v *View) Transfer(id int, label string, progress func() (done, total int64)) (end func()) {
	start := time.Now()
	// Add, not New: New panics once Stop has waited for the view, and a
	// module abandoned after its grace period may still start a transfer.
	b, err := v.p.Add(0, mpb.NopStyle().Build(),
		mpb.PrependDecorators(decor.Name("  "+label, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			return transferText(progress, time.Since(start))
		})),
	)
	if err != nil {
		return func() {} // the view has stopped
	}
	v.mu.Lock()
	if v.stopped {
		// Stop already removed the lines and waits for them to end.
		v.mu.Unlock()
		b.Abort(true)
		return func() {}
	}
	if v.transfers[id] == nil {
		v.transfers[id] = map[*mpb.Bar]bool{}
	}
	v.transfers[id][b] = true
	v.mu.Unlock()
	return func() {
		v.mu.Lock()
		_, running := v.transfers[id][b]
		delete(v.transfers[id], b)
		v.mu.Unlock()
		if running {
			b.Abort(true)
		}
	}
}

// transferText describes a transfer's progress after elapsed time:
// "412.0 MiB / 1.0 GiB  40%  61.2 MiB/s".
func transferText(progress func() (done, total int64), elapsed time.Duration) string {
	done, total := progress()
	if total <= 0 {
		return "preparing"
	}
	text := fmt.Sprintf("%s / % .1f  %d%%", sizeText(done), decor.SizeB1024(total), done*100/total)
	if s := elapsed.Seconds(); s > 0 && done > 0 {
		text += fmt.Sprintf("  % .1f/s", decor.SizeB1024(int64(float64(done)/s)))
	}
	return text
}

// sizeText is n in binary units ("412.0 MiB"), and "0 B" for nothing.
func sizeText(n int64) string {
	if n == 0 {
		return "0 B"
	}
	return fmt.Sprintf("% .1f", decor.SizeB1024(n))
}
