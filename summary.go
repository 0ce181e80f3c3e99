package modpipe

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
	"github.com/modpipe/modpipe/internal/render"
)

// Summary is the outcome of a run: one ModuleResult per module, in the
// order the modules were added (matrix variants in target order).
type Summary struct {
	// RunID identifies a distributed run, in the master's summary and in
	// every worker's; empty for single-instance runs.
	RunID string
	// Start is when the run started; Duration is its wall time.
	Start    time.Time
	Duration time.Duration
	// Distributed reports whether the run was spread over instances.
	Distributed bool
	// Role is the part this instance played. A worker's summary lists the
	// modules it executed; the master's lists them all.
	Role    Role
	Modules []ModuleResult
	// Fallback is set when a distributed run had no coordinator backend and
	// fell back to running on instance 0 alone (see NoFallback).
	Fallback bool
	// CoordinatorCommands is how many commands the master's coordinator
	// sent to its backend, when it counts them (the Redis one does).
	CoordinatorCommands uint64
	// CacheWarnings lists problems with the cache (a failing store, corrupt
	// or unverifiable entries); none of them fails the run.
	CacheWarnings []string
	// TeardownErrors lists the teardown hooks of this instance that failed
	// (see OnTeardown). They are reported but do not change the verdict.
	TeardownErrors []string

	workerFailed bool // a worker's view of the master's verdict
	workerCutOff bool // the worker stopped before the run ended: no verdict
}

// ModuleResult is what became of one module.
type ModuleResult struct {
	// Name is the module's name in this run: "name[target]" for a matrix
	// variant, the declared name otherwise.
	Name string
	// Module is the declared name; it differs from Name for matrix variants.
	Module string
	// MatrixTarget is the variant's target ("" outside MatrixTarget).
	MatrixTarget string
	// Category lists the module's categories, comma-separated ("" without
	// one).
	Category string
	// Status is what became of the module.
	Status Status
	// Reason explains a skip, a dependency failure or a module that was not
	// started.
	Reason string
	// Error is the failure message with secrets masked; Err is the error
	// itself (unmasked; use it with errors.Is and errors.As).
	Error string
	Err   error
	// ErrorKind classifies Err: KindError, KindTimeout, KindCancel or
	// KindPanic, and "" when the module has no error.
	ErrorKind ErrorKind
	// Attempts counts the executions of the module's function, retries
	// included (0 for a module that never started).
	Attempts int
	// Instance is the index of the instance that ran the module; it is
	// meaningful only for a module that started (Start is set) and 0
	// otherwise. The JSON report leaves it out for modules that never ran.
	Instance int
	// Dispatches counts how often a distributed run handed the module to an
	// instance: more than 1 after instances were lost while running it.
	Dispatches int
	// LastDispatchedTo is the worker the module was last dispatched to when
	// it failed because that worker was lost (no heartbeat within the lease
	// timeout) and no instance was left to run it again; 0 otherwise.
	LastDispatchedTo int
	// Start is when execution began; QueueWait is the time from ready (all
	// dependencies done) to start; Duration is the execution time.
	Start     time.Time
	QueueWait time.Duration
	Duration  time.Duration
	// Log is the module's log with secrets masked.
	Log string
	// Artifacts lists the artifacts found in the module's result.
	Artifacts []ArtifactSummary
	// Cache is what the cache did for a module declared with Cache; nil
	// for other modules.
	Cache *CacheResult

	artifacts []Artifact // their manifests, for --artifacts-out
}

// Failed reports whether any module failed the run. For a worker it is
// the master's verdict on the whole run, whatever became of the modules the
// worker ran (a module it ran may have failed with IgnoreFailure, or been
// run again elsewhere after the worker was cut off): workers exit with the
// run's verdict. A worker that stopped before the run ended (it lost the
// coordinator or the master) does not know the verdict and counts as failed.
func (s *Summary) Failed() bool {
	if s.Role == RoleWorker {
		return s.workerFailed || s.workerCutOff
	}
	for i := range s.Modules {
		if s.Modules[i].Status.Failed() {
			return true
		}
	}
	return false
}

// ExitCode is 0 when no module failed the run and 1 otherwise.
func (s *Summary) ExitCode() int {
	if s.Failed() {
		return 1
	}
	return 0
}

// Module returns the result of the module named name ("name[target]" for a
// matrix variant).
func (s *Summary) Module(name string) (ModuleResult, bool) {
	for _, m := range s.Modules {
		if m.Name == name {
			return m, true
		}
	}
	return ModuleResult{}, false
}

// Count returns how many modules ended with status st.
func (s *Summary) Count(st Status) int {
	n := 0
	for _, m := range s.Modules {
		if m.Status == st {
			n++
		}
	}
	return n
}

func (r *run) summary(outs []engine.Outcome, start time.Time, wall time.Duration) *Summary {
	s := &Summary{Start: start, Duration: wall, Role: r.instance.Role, Modules: make([]ModuleResult, len(outs))}
	for i := range outs {
		s.Modules[i] = r.moduleResult(i, &outs[i])
	}
	return s
}

// moduleResult is the summary's line for node i, whose outcome is o.
func (r *run) moduleResult(i int, o *engine.Outcome) ModuleResult {
	n := &r.nodes[i]
	m := ModuleResult{
		Name: n.name, Module: n.def.name, MatrixTarget: n.target, Category: strings.Join(n.def.categories, ","),
		Status: Status(r.finalStatus(i, o.Status)), Reason: r.secrets.String(o.Reason), Err: o.Err,
		Attempts: o.Attempts, Instance: o.Instance, Dispatches: o.Dispatches,
		LastDispatchedTo: o.LostHolder,
	}
	if o.Err != nil {
		m.Error = r.secrets.String(o.Err.Error())
		m.ErrorKind = errorKind(o.Kind)
	}
	if !o.Start.IsZero() {
		m.Start = o.Start
		if !o.End.IsZero() {
			m.Duration = o.End.Sub(o.Start)
		}
		switch {
		case o.QueueWait > 0:
			m.QueueWait = o.QueueWait
		case !o.Ready.IsZero():
			m.QueueWait = max(0, o.Start.Sub(o.Ready))
		}
	}
	if n.log.Len() > 0 {
		m.Log = r.secrets.String(string(n.log.Bytes()))
	}
	m.Cache = r.cacheResult(i) // cache.go
	if o.Status == engine.Succeeded {
		m.artifacts = findArtifacts(o.Value)
		m.Artifacts = summarizeArtifacts(m.artifacts)
	}
	return m
}

// WriteText writes the summary table: one row per module with its status,
// duration, attempts and reason, then a total line.
func (s *Summary) WriteText(w io.Writer) error {
	header := []string{"MODULE", "STATUS", "DURATION", "ATTEMPTS", "DETAILS"}
	if s.Distributed {
		header = []string{"MODULE", "STATUS", "INSTANCE", "QUEUED", "DURATION", "ATTEMPTS", "DETAILS"}
	}
	rows := make([][]string, 0, len(s.Modules))
	for _, m := range s.Modules {
		dur, attempts := "-", "-"
		if m.Attempts > 0 {
			dur = formatDuration(m.Duration)
		}
		if m.Attempts > 0 {
			attempts = strconv.Itoa(m.Attempts)
		}
		details := m.Reason
		if m.Status == Cached && m.Cache != nil {
			details = "saved " + formatDuration(m.Cache.Saved)
		}
		if m.Error != "" {
			details = firstLine(m.Error)
			if m.Reason != "" {
				details = m.Reason + ": " + details
			}
		}
		row := []string{m.Name, statusLabels[m.Status], dur, attempts, details}
		if s.Distributed {
			inst, queued := "-", "-"
			if !m.Start.IsZero() {
				inst, queued = strconv.Itoa(m.Instance), formatDuration(m.QueueWait)
			}
			row = []string{row[0], row[1], inst, queued, dur, attempts, details}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		if _, err := fmt.Fprintln(w, s.nothingRan()); err != nil {
			return err
		}
	} else if err := render.Table(w, header, rows); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "\n%s\n", s.verdictLine()); err != nil {
		return err
	}
	if s.RunID != "" {
		if _, err := fmt.Fprintf(w, "Run id: %s\n", s.RunID); err != nil {
			return err
		}
	}
	if err := s.writeArtifacts(w); err != nil { // artifact_run.go
		return err
	}
	if err := s.writeCache(w); err != nil { // cache.go
		return err
	}
	if s.CoordinatorCommands > 0 && len(s.Modules) > 0 {
		_, err := fmt.Fprintf(w, "Coordinator: %d commands from the master (%.1f per module)\n", s.CoordinatorCommands, float64(s.CoordinatorCommands)/float64(len(s.Modules)))
		return err
	}
	return nil
}

// nothingRan says why a summary has no rows.
func (s *Summary) nothingRan() string {
	if s.Role == RoleWorker {
		return "This worker ran no modules: the master and the other instances took them all."
	}
	return "The pipeline has no modules."
}

// statusLabels are the summary's status cells: symbol and name.
var statusLabels = func() map[Status]string {
	m := map[Status]string{}
	for st := Pending; st <= Cached; st++ {
		m[st] = statusSymbols[engine.Status(st)] + " " + st.String()
	}
	return m
}()

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// ReportSchema identifies the JSON report format written by WriteJSON.
const ReportSchema = "modpipe.report/v1"

// report is the JSON form of a Summary; see WriteJSON for the schema.
type report struct {
	Schema      string         `json:"schema"`
	RunID       string         `json:"run_id,omitempty"`
	Result      string         `json:"result"`
	ExitCode    int            `json:"exit_code"`
	StartedAt   time.Time      `json:"started_at"`
	DurationMS  float64        `json:"duration_ms"`
	Distributed bool           `json:"distributed"`
	Commands    uint64         `json:"coordinator_commands,omitempty"`
	Counts      map[string]int `json:"counts"`
	Modules     []reportModule `json:"modules"`
	Timeline    []reportLane   `json:"timeline"`
	CacheSaved  float64        `json:"cache_saved_ms,omitempty"`
	CacheWarn   []string       `json:"cache_warnings,omitempty"`
	Teardown    []string       `json:"teardown_errors,omitempty"`
}

// reportLane is one instance's modules in time order, in milliseconds
// from the start of the run.
type reportLane struct {
	Instance int          `json:"instance"`
	Spans    []reportSpan `json:"spans"`
}

type reportSpan struct {
	Module  string  `json:"module"`
	Status  Status  `json:"status"`
	StartMS float64 `json:"start_ms"`
	EndMS   float64 `json:"end_ms"`
}

type reportModule struct {
	Name         string           `json:"name"`
	Module       string           `json:"module"`
	MatrixTarget string           `json:"matrix_target,omitempty"`
	Category     string           `json:"category,omitempty"`
	Status       Status           `json:"status"`
	Reason       string           `json:"reason,omitempty"`
	Error        string           `json:"error,omitempty"`
	ErrorKind    ErrorKind        `json:"error_kind,omitempty"`
	Attempts     int              `json:"attempts"`
	Instance     *int             `json:"instance,omitempty"`
	Dispatches   int              `json:"dispatches,omitempty"`
	LastDispatch int              `json:"last_dispatched_to,omitempty"`
	StartedAt    *time.Time       `json:"started_at,omitempty"`
	QueueWaitMS  float64          `json:"queue_wait_ms"`
	DurationMS   float64          `json:"duration_ms"`
	LogTail      string           `json:"log_tail,omitempty"`
	Artifacts    []reportArtifact `json:"artifacts,omitempty"`
	Cache        *reportCache     `json:"cache,omitempty"`
}

// reportLogLines is how many log lines of each module the report keeps.
const reportLogLines = 50

// WriteJSON writes the run report, schema "modpipe.report/v1":
//
//	{
//	  "schema": "modpipe.report/v1",
//	  "run_id": "…",                      // distributed runs only (master's and workers' reports)
//	  "result": "succeeded" | "failed",
//	  "exit_code": 0 | 1,
//	  "started_at": "RFC 3339 time",
//	  "duration_ms": 1234.5,
//	  "distributed": false,
//	  "coordinator_commands": 120,         // when the coordinator counts them
//	  "counts": {"succeeded": 3, "skipped": 1},
//	  "modules": [{
//	    "name": "cross-tests[linux]", "module": "cross-tests",
//	    "matrix_target": "linux", "category": "test",
//	    "status": "succeeded" | "failed" | "skipped" | "timed-out" |
//	              "cancelled" | "dependency-failed" | "ignored-failure" | "cached",
//	    "reason": "…", "error": "…", "error_kind": "error" | "timeout" | "cancel" | "panic",
//	    "attempts": 1,
//	    "instance": 0,                     // the instance that ran it; absent for a module that never started
//	    "dispatches": 1,
//	    "last_dispatched_to": 2,           // the lost worker it was last dispatched to, when it failed for that loss
//	    "started_at": "…", "queue_wait_ms": 0.1, "duration_ms": 850.2,
//	    "log_tail": "last 50 lines of the module's log",
//	    "artifacts": [{                    // artifacts found in the module's result; absent when none
//	      "name": "app", "files": 3, "bytes": 5242880
//	    }],
//	    "cache": {                         // modules declared with Cache only
//	      "key": "64 hex digits", "hit": true, "saved_ms": 850.2, "stored": false,
//	      "changes": ["file changed: main.go"], // a miss with --explain-cache or --report
//	      "note": "why the cache was not used"
//	    }
//	  }],
//	  "cache_saved_ms": 1700.4,            // time the cache saved; absent when none
//	  "cache_warnings": ["…"],             // absent when none
//	  "cache_saved_ms": 1700.4,            // time the cache saved; absent when none
//	  "cache_warnings": ["…"],             // absent when none
//	  "timeline": [{                       // one lane per instance that ran modules
//	    "instance": 0,
//	    "spans": [{"module": "build", "status": "succeeded", "start_ms": 0.4, "end_ms": 850.6}]
//	  }]
//	}
//
// Fields are only ever added to v1, never renamed or removed.
func (s *Summary) WriteJSON(w io.Writer) error {
	rep := report{
		Schema: ReportSchema, RunID: s.RunID, Result: "succeeded", ExitCode: s.ExitCode(),
		StartedAt: s.Start, DurationMS: ms(s.Duration), Distributed: s.Distributed, Commands: s.CoordinatorCommands,
		Counts: map[string]int{}, Modules: make([]reportModule, len(s.Modules)),
	}
	if s.Failed() {
		rep.Result = "failed"
	}
	for i, m := range s.Modules {
		rep.Counts[m.Status.String()]++
		rm := reportModule{
			Name: m.Name, Module: m.Module, MatrixTarget: m.MatrixTarget, Category: m.Category,
			Status: m.Status, Reason: m.Reason, Error: m.Error, ErrorKind: m.ErrorKind,
			Attempts: m.Attempts, Dispatches: m.Dispatches, LastDispatch: m.LastDispatchedTo,
			QueueWaitMS: ms(m.QueueWait), DurationMS: ms(m.Duration),
			LogTail: logbuf.TailLines([]byte(m.Log), reportLogLines),
		}
		for _, a := range m.Artifacts {
			rm.Artifacts = append(rm.Artifacts, reportArtifact(a))
		}
		rm.Cache = newReportCache(m.Cache) // cache.go
		if !m.Start.IsZero() {
			t, inst := m.Start, m.Instance
			rm.StartedAt, rm.Instance = &t, &inst
		}
		rep.Modules[i] = rm
	}
	rep.Timeline = s.timeline()
	rep.CacheSaved, rep.CacheWarn = ms(s.CacheSaved()), s.CacheWarnings
	rep.Teardown = s.TeardownErrors
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// timeline groups executed modules by instance, in start order.
func (s *Summary) timeline() []reportLane {
	lanes := map[int]*reportLane{}
	for _, m := range s.Modules {
		if m.Attempts == 0 || m.Start.IsZero() {
			continue
		}
		l := lanes[m.Instance]
		if l == nil {
			l = &reportLane{Instance: m.Instance}
			lanes[m.Instance] = l
		}
		start := m.Start.Sub(s.Start)
		l.Spans = append(l.Spans, reportSpan{Module: m.Name, Status: m.Status, StartMS: ms(start), EndMS: ms(start + m.Duration)})
	}
	out := make([]reportLane, 0, len(lanes))
	for _, l := range lanes {
		slices.SortFunc(l.Spans, func(a, b reportSpan) int { return cmp.Compare(a.StartMS, b.StartMS) })
		out = append(out, *l)
	}
	slices.SortFunc(out, func(a, b reportLane) int { return a.Instance - b.Instance })
	return out
}
