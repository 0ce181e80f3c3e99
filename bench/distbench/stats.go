package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// percentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method: the smallest sample such that at least p% of the
// samples are less than or equal to it. It returns NaN for no samples.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// median is the middle sample (the mean of the two middle ones for an even
// count); NaN for no samples.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Figure is one reported number. The table and the JSON file are both made
// from the list of figures, so they cannot disagree.
type Figure struct {
	// Key identifies the figure in the JSON output, e.g. "throughput.modpipe.w1".
	Key     string `json:"key"`
	Section string `json:"section"`
	Label   string `json:"label"`
	Unit    string `json:"unit"`
	// Value is the median over repetitions (or the single measurement).
	Value float64 `json:"value"`
	// Samples are the per-repetition values the median is taken from.
	Samples []float64 `json:"samples,omitempty"`
	// Baseline is the key of the figure Value is compared with, Ratio is
	// Value / that figure's value (for times: >1 means slower than the
	// baseline; for rates: >1 means more per second).
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	// Target is an upper bound the figure is meant to stay within (0: none).
	Target float64 `json:"target,omitempty"`
	Note   string  `json:"note,omitempty"`
}

// Results is what -json writes.
type Results struct {
	Meta    map[string]string `json:"meta"`
	Figures []*Figure         `json:"figures"`
	// Details holds extra per-scenario breakdowns (commands by command and
	// by instance, CPU time by process) that do not fit the table.
	Details map[string]any `json:"details,omitempty"`
}

func (r *Results) add(f *Figure) *Figure {
	if len(f.Samples) > 0 && f.Value == 0 {
		f.Value = median(f.Samples)
	}
	r.Figures = append(r.Figures, f)
	return f
}

func (r *Results) find(key string) *Figure {
	for _, f := range r.Figures {
		if f.Key == key {
			return f
		}
	}
	return nil
}

// link sets the ratios of every figure that names a baseline.
func (r *Results) link() {
	for _, f := range r.Figures {
		if f.Baseline == "" {
			continue
		}
		b := r.find(f.Baseline)
		if b == nil || b.Value == 0 || math.IsNaN(b.Value) || math.IsNaN(f.Value) {
			f.Ratio = 0
			continue
		}
		f.Ratio = f.Value / b.Value
	}
}

// formatNum prints about three significant digits, without exponents.
func formatNum(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	}
	decimals := 2 - int(math.Floor(math.Log10(a)))
	return fmt.Sprintf("%.*f", decimals, v)
}

// formatRatio prints a ratio as "1.23x", or "1/2667x" when below 0.1.
func formatRatio(v float64) string {
	if v > 0 && v < 0.1 {
		return "1/" + formatNum(1/v) + "x"
	}
	return formatNum(v) + "x"
}

// sorted returns the figures ordered by section number (the section
// title's first word: "1-2", "3", ..., "6a", "6b", "7"), in the order they
// were added within a section number.
func (r *Results) sorted() []*Figure {
	out := slices.Clone(r.Figures)
	num := func(f *Figure) string { n, _, _ := strings.Cut(f.Section, " "); return n }
	slices.SortStableFunc(out, func(a, b *Figure) int { return strings.Compare(num(a), num(b)) })
	return out
}

// row is one formatted line of the table.
type row struct{ label, value, unit, ratio, note string }

func formatFigure(r *Results, f *Figure) row {
	out := row{label: f.Label, value: formatNum(f.Value), unit: f.Unit, note: f.Note}
	if len(f.Samples) > 1 {
		out.value += fmt.Sprintf(" [%s..%s]", formatNum(slices.Min(f.Samples)), formatNum(slices.Max(f.Samples)))
	}
	if f.Baseline != "" {
		if b := r.find(f.Baseline); b != nil && f.Ratio != 0 {
			out.ratio = formatRatio(f.Ratio) + " " + b.Label
		}
	}
	if f.Target > 0 {
		verdict := "within"
		if f.Value > f.Target {
			verdict = "OVER"
		}
		out.note = strings.TrimSpace(fmt.Sprintf("target <= %s: %s. %s", formatNum(f.Target), verdict, out.note))
	}
	return out
}

// writeTable prints the figures grouped by section, columns aligned
// across the whole table: label, value [min..max of the repetitions],
// unit, ratio to the baseline, note.
func writeTable(w io.Writer, r *Results) error {
	figs := r.sorted()
	rows := make([]row, len(figs))
	var wl, wv, wu, wr int
	for i, f := range figs {
		rows[i] = formatFigure(r, f)
		wl, wv = max(wl, len([]rune(rows[i].label))), max(wv, len([]rune(rows[i].value)))
		wu, wr = max(wu, len([]rune(rows[i].unit))), max(wr, len([]rune(rows[i].ratio)))
	}
	pad := func(s string, n int) string { return s + strings.Repeat(" ", max(0, n-len([]rune(s)))) }
	var b strings.Builder
	section := ""
	for i, f := range figs {
		if i == 0 || f.Section != section {
			if i > 0 {
				b.WriteString("\n")
			}
			section = f.Section
			b.WriteString(section + "\n")
		}
		x := rows[i]
		line := "  " + pad(x.label, wl) + "  " + pad(x.value, wv) + "  " + pad(x.unit, wu) + "  " + pad(x.ratio, wr) + "  " + x.note
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeJSON writes r; a figure without data (NaN) is written as 0 with a note.
func writeJSON(path string, r *Results) error {
	clean := *r
	clean.Figures = nil
	for _, f := range r.sorted() {
		g := *f
		if math.IsNaN(g.Value) || math.IsInf(g.Value, 0) {
			g.Value, g.Note = 0, strings.TrimSpace("no data. "+g.Note)
		}
		g.Samples = slices.DeleteFunc(slices.Clone(g.Samples), func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) })
		clean.Figures = append(clean.Figures, &g)
	}
	b, err := json.MarshalIndent(&clean, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
