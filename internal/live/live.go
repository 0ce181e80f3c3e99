// Package live shows the running modules in an interactive terminal: one
// line per module with its name, where it runs and how long it has been
// running, below the module groups printed so far. It is built on mpb; when
// the output is not a terminal (CI, pipes) modpipe does not use it.
package live

import (
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
}

// Start starts a view writing to out.
func Start(out io.Writer) *View {
	return &View{
		p:     mpb.New(mpb.WithOutput(out), mpb.WithWidth(1), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh()),
		bars:  map[int]*mpb.Bar{},
		where: map[int]string{},
	}
}

// Writer prints above the live lines (module groups go through it).
func (v *View) Writer() io.Writer { return v.p }

// Started shows module id as running.
func (v *View) Started(id int, name string) {
	b := v.p.New(0, mpb.SpinnerStyle("⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"),
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
	v.mu.Lock()
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
	v.mu.Unlock()
	if b != nil {
		b.Abort(true)
	}
}

// Stop removes the view; output continues below what was printed.
func (v *View) Stop() {
	v.mu.Lock()
	for id, b := range v.bars {
		b.Abort(true)
		delete(v.bars, id)
	}
	v.mu.Unlock()
	v.p.Wait()
}
