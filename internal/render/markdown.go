package render

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// JobSummary is what the Markdown job summary shows.
type JobSummary struct {
	Title    string // "Run succeeded in 1.2s: 6 succeeded, 2 skipped"
	Failed   bool
	Start    time.Time
	Rows     []SummaryRow
	Failure  *FailureDetail // the first failure, if any
	Commands string         // a line about coordinator commands, if any
}

// SummaryRow is one module in the job summary.
type SummaryRow struct {
	Name, Status, Symbol, Instance, Attempts, QueueWait, Duration, Details string
	// Start and End place the module on the timeline; zero Start: not run.
	Start, End time.Time
	Lane       string // timeline lane ("instance 2", or "local")
	Bad        bool
}

// FailureDetail is the first failure with the tail of its log.
type FailureDetail struct {
	Module, Where, Error, LogTail string
}

// WriteMarkdown writes a GitHub job summary: a status table, the first
// failure with its log tail, and a Mermaid gantt chart of the run with one
// lane per instance (GitHub renders Mermaid as a picture).
func WriteMarkdown(w io.Writer, s JobSummary) error {
	var b strings.Builder
	icon := "✅"
	if s.Failed {
		icon = "❌"
	}
	fmt.Fprintf(&b, "## %s modpipe: %s\n\n", icon, mdText(s.Title))
	b.WriteString("| Module | Status | Instance | Attempts | Queue wait | Duration | Details |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range s.Rows {
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s | %s | %s | %s |\n", mdCell(r.Name), r.Symbol, r.Status, r.Instance, r.Attempts, r.QueueWait, r.Duration, mdCell(r.Details))
	}
	if s.Commands != "" {
		fmt.Fprintf(&b, "\n%s\n", mdText(s.Commands))
	}
	if f := s.Failure; f != nil {
		fmt.Fprintf(&b, "\n### First failure: `%s`%s\n\n", strings.ReplaceAll(f.Module, "`", "'"), f.Where)
		fmt.Fprintf(&b, "```text\n%s\n```\n", fence(f.Error))
		if f.LogTail != "" {
			fmt.Fprintf(&b, "\n<details><summary>Last lines of its log</summary>\n\n```text\n%s\n```\n\n</details>\n", fence(f.LogTail))
		}
	}
	writeGantt(&b, s)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeGantt draws the timeline: dateFormat x takes Unix milliseconds.
func writeGantt(b *strings.Builder, s JobSummary) {
	lanes := []string{}
	byLane := map[string][]SummaryRow{}
	for _, r := range s.Rows {
		if r.Start.IsZero() {
			continue
		}
		if _, ok := byLane[r.Lane]; !ok {
			lanes = append(lanes, r.Lane)
		}
		byLane[r.Lane] = append(byLane[r.Lane], r)
	}
	if len(lanes) == 0 {
		return
	}
	// "instance 2" before "instance 10".
	slices.SortFunc(lanes, func(a, b string) int { return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) })
	// Ticks must tell apart the moments of the run: short runs need
	// milliseconds, long ones hours.
	first, last := byLane[lanes[0]][0].Start, byLane[lanes[0]][0].End
	for _, rows := range byLane {
		for _, r := range rows {
			first, last = minTime(first, r.Start), maxTime(last, r.End)
		}
	}
	axis := "%M:%S"
	switch span := last.Sub(first); {
	case span < 10*time.Second:
		axis = "%M:%S.%L"
	case span >= time.Hour:
		axis = "%H:%M"
	}
	fmt.Fprintf(b, "\n### Timeline\n\n```mermaid\ngantt\n    dateFormat x\n    axisFormat %s\n", axis)
	for _, lane := range lanes {
		fmt.Fprintf(b, "    section %s\n", mermaidText(lane))
		for _, r := range byLane[lane] {
			end := r.End
			if end.Sub(r.Start) < time.Millisecond {
				end = r.Start.Add(time.Millisecond) // mermaid drops empty bars
			}
			tag := "done"
			if r.Bad {
				tag = "crit"
			}
			fmt.Fprintf(b, "    %s :%s, %d, %d\n", mermaidText(r.Name), tag, r.Start.UnixMilli(), end.UnixMilli())
		}
	}
	b.WriteString("```\n")
}

// mdCell escapes a table cell: pipes and newlines would break the row.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "\n", " ")
	return s
}

func mdText(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// fence keeps a code block from being closed early by its content.
func fence(s string) string { return strings.ReplaceAll(s, "```", "'''") }

// mermaidText removes what Mermaid's gantt syntax treats specially.
func mermaidText(s string) string {
	return strings.NewReplacer(":", " ", "#", " ", ";", " ", "\n", " ").Replace(s)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
