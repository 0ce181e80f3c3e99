package modpipe

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
	"github.com/modpipe/modpipe/internal/render"
)

// WriteMarkdown writes the summary as a GitHub job summary: a status table
// (module, status, instance, attempts, queue wait, duration), the first
// failure with the tail of its log, and a Mermaid gantt chart of the run
// with one lane per instance. Main appends it to $GITHUB_STEP_SUMMARY.
func (s *Summary) WriteMarkdown(w io.Writer) error {
	js := render.JobSummary{Title: s.verdictLine(), Failed: s.Failed(), Start: s.Start}
	for _, m := range s.Modules {
		r := render.SummaryRow{
			Name: m.Name, Status: m.Status.String(), Symbol: statusSymbols[engine.Status(m.Status)],
			Instance: "-", Attempts: "-", QueueWait: "-", Duration: "-", Details: firstLine(m.Reason), Bad: m.Status.Failed(),
		}
		if m.Status == Cached && m.Cache != nil {
			r.Details = "saved " + formatDuration(m.Cache.Saved) // as the text summary says
		}
		if m.Error != "" {
			r.Details = firstLine(m.Error)
		}
		if m.Attempts > 0 {
			r.Attempts, r.Duration = strconv.Itoa(m.Attempts), formatDuration(m.Duration)
			r.QueueWait = formatDuration(m.QueueWait)
			r.Start, r.End = m.Start, m.Start.Add(m.Duration)
			r.Lane = "local"
			if s.Distributed {
				r.Instance = strconv.Itoa(m.Instance)
				r.Lane = "instance " + r.Instance
			}
		}
		js.Rows = append(js.Rows, r)
		if js.Failure == nil && (m.Status == Failed || m.Status == TimedOut) {
			f := &render.FailureDetail{Module: m.Name, Error: m.Error, LogTail: logbuf.TailLines([]byte(m.Log), 30)}
			if s.Distributed {
				f.Where = fmt.Sprintf(" on instance %d", m.Instance)
			}
			js.Failure = f
		}
	}
	if s.CoordinatorCommands > 0 {
		js.Commands = fmt.Sprintf("Coordinator: %d commands from the master.", s.CoordinatorCommands)
	}
	if err := render.WriteMarkdown(w, js); err != nil {
		return err
	}
	if err := s.writeCacheMarkdown(w); err != nil {
		return err
	}
	return s.writeArtifactsMarkdown(w) // artifact_run.go
}

// writeCacheMarkdown writes the cache line of the job summary: hits,
// misses and the time the hits saved, as under the text summary.
func (s *Summary) writeCacheMarkdown(w io.Writer) error {
	hits, misses := 0, 0
	for _, m := range s.Modules {
		switch {
		case m.Cache == nil:
		case m.Cache.Hit:
			hits++
		default:
			misses++
		}
	}
	if hits+misses == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "\n**Cache:** %d hits, %d misses; saved %s.\n", hits, misses, formatDuration(s.CacheSaved()))
	return err
}

// verdictLine is "Run succeeded in 1.2s: 6 succeeded, 2 skipped".
func (s *Summary) verdictLine() string {
	verdict := "succeeded"
	if s.Failed() {
		verdict = "FAILED"
	}
	var counts []string
	for st := Succeeded; st <= Cached; st++ {
		if n := s.Count(st); n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(counts) == 0 {
		counts = append(counts, "no modules ran here")
	}
	if s.workerCutOff {
		return fmt.Sprintf("Run verdict unknown: this worker stopped after %s, before the run ended (the error below says why; instance 0 reports the run): %s", formatDuration(s.Duration), strings.Join(counts, ", "))
	}
	return fmt.Sprintf("Run %s in %s: %s", verdict, formatDuration(s.Duration), strings.Join(counts, ", "))
}

// appendJobSummary appends the Markdown summary to the file GitHub Actions
// names in GITHUB_STEP_SUMMARY.
func appendJobSummary(path string, s *Summary) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("writing the job summary: %w", err)
	}
	if err := s.WriteMarkdown(f); err != nil {
		f.Close()
		return fmt.Errorf("writing the job summary %s: %w", path, err)
	}
	return f.Close()
}
