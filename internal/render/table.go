package render

import (
	"io"
	"unicode/utf8"
)

// Table writes rows as left-aligned columns separated by two spaces, with a
// header row and a rule under it. The last column is not padded.
func Table(w io.Writer, header []string, rows [][]string) error {
	widths := make([]int, len(header))
	size := 0
	measure := func(r []string) {
		for i, c := range r {
			size += len(c) + 2
			if i < len(widths)-1 {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	measure(header)
	for _, r := range rows {
		measure(r)
	}
	rule := 0
	for _, wd := range widths[:len(widths)-1] {
		rule += wd + 2
	}
	rule += utf8.RuneCountInString(header[len(header)-1])

	b := make([]byte, 0, size+len(rows)*rule/2+rule*3)
	b = appendRow(b, widths, header)
	for range rule {
		b = append(b, "─"...)
	}
	b = append(b, '\n')
	for _, r := range rows {
		b = appendRow(b, widths, r)
	}
	_, err := w.Write(b)
	return err
}

func appendRow(b []byte, widths []int, row []string) []byte {
	// Trailing empty cells add no padding.
	last := len(row) - 1
	for last > 0 && row[last] == "" {
		last--
	}
	for i, c := range row[:last+1] {
		b = append(b, c...)
		if i < last {
			for range widths[i] - utf8.RuneCountInString(c) + 2 {
				b = append(b, ' ')
			}
		}
	}
	return append(b, '\n')
}
