// Package render formats what a run shows people: module log groups, the
// summary table, and GitHub Actions workflow commands.
package render

import (
	"bytes"
	"io"
	"strconv"
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

	mu  sync.Mutex
	buf []byte // reused under mu
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
	log := p.mask(string(g.Log))
	errText := p.mask(g.Err)
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buf[:0]
	if p.GitHub {
		b = append(b, "::group::"...)
		b = appendTitle(b, g, true)
		b = append(b, '\n')
		b = append(b, log...)
		if errText != "" {
			b = append(b, "error: "...)
			b = append(b, errText...)
			b = append(b, '\n')
		}
		b = append(b, "::endgroup::\n"...)
		if errText != "" {
			cmd := "::error title="
			if g.Warn {
				cmd = "::warning title="
			}
			b = append(b, cmd...)
			b = append(b, escapeProperty(g.Name+" "+g.Status)...)
			b = append(b, "::"...)
			b = append(b, escapeData(errText)...)
			b = append(b, '\n')
		}
	} else {
		b = appendTitle(b, g, false)
		b = append(b, '\n')
		b = appendIndented(b, log)
		if errText != "" {
			b = appendIndented(b, "error: "+errText+"\n")
		}
	}
	p.buf = b
	_, _ = p.W.Write(b)
}

func appendTitle(b []byte, g Group, escape bool) []byte {
	start := len(b)
	b = append(b, g.Symbol...)
	b = append(b, ' ')
	b = append(b, g.Name...)
	b = append(b, " · "...)
	b = append(b, g.Status...)
	if g.Detail != "" {
		b = append(b, " · "...)
		b = append(b, g.Detail...)
	}
	if escape && bytes.ContainsAny(b[start:], "%\r\n") {
		t := escapeData(string(b[start:]))
		b = append(b[:start], t...)
	}
	return b
}

func (p *Printer) mask(s string) string {
	if p.Mask == nil || s == "" {
		return s
	}
	return p.Mask(s)
}

func appendIndented(b []byte, text string) []byte {
	for line := range strings.Lines(text) {
		b = append(b, "    "...)
		b = append(b, line...)
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		b = append(b, '\n')
	}
	return b
}

// escapeData escapes a GitHub Actions workflow command's message.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a GitHub Actions workflow command's property value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// Annotation formats a GitHub Actions ::error command that annotates file
// at line (file relative to the repository root; "" for none) with title
// and message, as one line ending in a newline. Workflow commands are
// recognised anywhere in a job's output, inside a ::group:: too.
func Annotation(file string, line int, title, message string) string {
	var b strings.Builder
	b.WriteString("::error ")
	if file != "" {
		b.WriteString("file=" + escapeProperty(file) + ",")
		if line > 0 {
			b.WriteString("line=" + strconv.Itoa(line) + ",")
		}
	}
	b.WriteString("title=" + escapeProperty(title) + "::" + escapeData(message) + "\n")
	return b.String()
}
