package render

import (
	"io"
	"strings"
	"unicode/utf8"
)

// Table writes rows as left-aligned columns separated by two spaces, with a
// header row and a rule under it. The last column is not padded.
func Table(w io.Writer, header []string, rows [][]string) error {
	widths := make([]int, len(header))
	measure := func(r []string) {
		for i, c := range r {
			if i < len(widths)-1 {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	measure(header)
	for _, r := range rows {
		measure(r)
	}
	var b strings.Builder
	line := func(r []string) {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		// Drop the padding of empty trailing cells.
		s := strings.TrimRight(b.String(), " ")
		b.Reset()
		b.WriteString(s)
		b.WriteByte('\n')
	}
	var out strings.Builder
	line(header)
	out.WriteString(b.String())
	b.Reset()
	total := 0
	for _, wd := range widths[:len(widths)-1] {
		total += wd + 2
	}
	total += utf8.RuneCountInString(header[len(header)-1])
	out.WriteString(strings.Repeat("─", total))
	out.WriteByte('\n')
	for _, r := range rows {
		line(r)
		out.WriteString(b.String())
		b.Reset()
	}
	_, err := io.WriteString(w, out.String())
	return err
}
