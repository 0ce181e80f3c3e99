// Package render formats what a run shows people: module log groups, the
// summary table, and GitHub Actions workflow commands.
package render

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Printer writes module groups to one writer, one group at a time, so that
// concurrent modules never interleave their lines.
type Printer struct {
	W io.Writer
	// GitHub formats groups with ::group:: and failures with ::error::.
	GitHub bool
	// Mask hides secrets; nil leaves text unchanged.
	Mask func(string) string

	mu sync.Mutex
}

// Group is one module's block of output.
type Group struct {
	Name   string
	Status string
	// Symbol is a one-character mark of the status.
	Symbol string
	// Detail follows the status on the title line (duration, attempts, instance).
	Detail string
	Log    []byte
	// Err is the failure message, if the module failed.
	Err string
	// Warn reports Err as a warning (an ignored failure) rather than an error.
	Warn bool
}

// Group prints g.
func (p *Printer) Group(g Group) {
	var b bytes.Buffer
	title := fmt.Sprintf("%s %s · %s", g.Symbol, g.Name, g.Status)
	if g.Detail != "" {
		title += " · " + g.Detail
	}
	log := p.mask(string(g.Log))
	errText := p.mask(g.Err)
	if p.GitHub {
		b.WriteString("::group::")
		b.WriteString(escapeData(title))
		b.WriteByte('\n')
		b.WriteString(log)
		if errText != "" {
			fmt.Fprintf(&b, "error: %s\n", errText)
		}
		b.WriteString("::endgroup::\n")
		if errText != "" {
			cmd := "error"
			if g.Warn {
				cmd = "warning"
			}
			fmt.Fprintf(&b, "::%s title=%s::%s\n", cmd, escapeProperty(g.Name+" "+g.Status), escapeData(errText))
		}
	} else {
		b.WriteString(title)
		b.WriteByte('\n')
		indent(&b, log)
		if errText != "" {
			indent(&b, "error: "+errText+"\n")
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = p.W.Write(b.Bytes())
}

// Printf prints a line outside any group.
func (p *Printer) Printf(format string, args ...any) {
	s := p.mask(fmt.Sprintf(format, args...))
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.W, s)
}

func (p *Printer) mask(s string) string {
	if p.Mask == nil || s == "" {
		return s
	}
	return p.Mask(s)
}

func indent(b *bytes.Buffer, text string) {
	for line := range strings.Lines(text) {
		b.WriteString("    ")
		b.WriteString(line)
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
}

// escapeData escapes a GitHub Actions workflow command's message.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a GitHub Actions workflow command's property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
