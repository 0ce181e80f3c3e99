package modpipe

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// orderPipeline is the router's shape in small: a two-module chain and a
// long module, one slot. Counting modules, the chain's head comes first;
// by the durations of a previous run, the long race run does.
func orderPipeline() (*Pipeline, func() []string) {
	var mu sync.Mutex
	var order []string
	task := func(name string, opts ...Option) *Module[None] {
		return Task(name, func(*Context) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, name)
			return nil
		}, opts...)
	}
	fmtMod := task("fmt")
	vet := task("vet", DependsOn(fmtMod))
	race := task("race")
	p := NewPipeline().Add(fmtMod, vet, race)
	p.Output = &bytes.Buffer{}
	return p, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(order)
	}
}

// previousReport writes the report of an earlier run in which race took
// 30 s and the chain 3 s.
func previousReport(t *testing.T) string {
	t.Helper()
	s := &Summary{Start: time.Now(), Modules: []ModuleResult{
		{Name: "fmt", Module: "fmt", Status: Succeeded, Attempts: 1, Start: time.Now(), Duration: time.Second},
		{Name: "vet", Module: "vet", Status: Succeeded, Attempts: 1, Start: time.Now(), Duration: 2 * time.Second},
		{Name: "race", Module: "race", Status: Succeeded, Attempts: 1, Start: time.Now(), Duration: 30 * time.Second},
	}}
	path := filepath.Join(t.TempDir(), "previous.json")
	if err := writeReport(path, s); err != nil {
		t.Fatal(err)
	}
	return path
}

var raceFirst = []string{"race", "fmt", "vet"}

func TestMainOrdersByModuleCountWithoutDurations(t *testing.T) {
	p, order := orderPipeline()
	if code, _, errOut := runMain(t, p, nil, "--parallel", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := order(); !slices.Equal(got, []string{"fmt", "vet", "race"}) {
		t.Errorf("order %v: without durations the longer chain (2 modules) comes first", got)
	}
}

func TestMainOrdersByDurationsFlag(t *testing.T) {
	prev := previousReport(t)
	p, order := orderPipeline()
	if code, _, errOut := runMain(t, p, nil, "--parallel", "1", "--durations", prev); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := order(); !slices.Equal(got, raceFirst) {
		t.Errorf("order %v, want %v: race took 30 s in the previous run", got, raceFirst)
	}
}

func TestMainOrdersByDurationsEnv(t *testing.T) {
	prev := previousReport(t)
	p, order := orderPipeline()
	if code, _, errOut := runMain(t, p, map[string]string{"MODPIPE_DURATIONS": prev}, "--parallel", "1"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := order(); !slices.Equal(got, raceFirst) {
		t.Errorf("order %v, want %v", got, raceFirst)
	}
}

// An existing --report file is the previous run's report: read before it
// is overwritten by this run's.
func TestMainReadsDurationsFromTheReportItOverwrites(t *testing.T) {
	report := previousReport(t)
	p, order := orderPipeline()
	if code, _, errOut := runMain(t, p, nil, "--parallel", "1", "--report", report); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := order(); !slices.Equal(got, raceFirst) {
		t.Errorf("order %v, want %v", got, raceFirst)
	}
	f, err := os.Open(report)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := DurationsFromReport(f)
	if err != nil {
		t.Fatal(err)
	}
	if d["race"] >= 30*time.Second || len(d) != 3 {
		t.Errorf("the report was not overwritten by this run's: %v", d)
	}
}

// A first run has no report yet: nothing to say. A file that is not a
// report is a warning and the run goes on, ordered by module counts.
func TestMainDurationsFileProblems(t *testing.T) {
	p, _ := orderPipeline()
	fresh := filepath.Join(t.TempDir(), "report.json")
	if code, _, errOut := runMain(t, p, nil, "--report", fresh); code != 0 || errOut != "" {
		t.Errorf("first run: exit %d, stderr %q", code, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schema": "something/else"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, order := orderPipeline()
	code, _, errOut := runMain(t, p, nil, "--parallel", "1", "--durations", bad)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"--durations " + bad, `"something/else"`, "ordered by counting them", "give the --report file of an earlier run"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("warning %q does not say %q", errOut, want)
		}
	}
	if got := order(); got[0] != "fmt" {
		t.Errorf("order %v: a bad file must leave the module-count order", got)
	}

	missing := filepath.Join(t.TempDir(), "missing.json")
	p, _ = orderPipeline()
	if _, _, errOut := runMain(t, p, nil, "--durations", missing); !strings.Contains(errOut, "no such file") {
		t.Errorf("an explicit --durations file that is missing is not mentioned: %q", errOut)
	}
}

// Only modules that ran to the end say how long they take.
func TestDurationsFromReportKeepsModulesThatRanToTheEnd(t *testing.T) {
	now := time.Now()
	s := &Summary{Start: now, Modules: []ModuleResult{
		{Name: "ok", Status: Succeeded, Attempts: 1, Start: now, Duration: 1500 * time.Millisecond},
		{Name: "x[linux]", Status: IgnoredFailure, Attempts: 1, Start: now, Duration: time.Second},
		{Name: "slow", Status: TimedOut, Attempts: 1, Start: now, Duration: time.Minute},
		{Name: "broke", Status: Failed, Attempts: 1, Start: now, Duration: time.Millisecond},
		{Name: "skipped", Status: Skipped},
		{Name: "stopped", Status: Cancelled},
	}}
	var b bytes.Buffer
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	d, err := DurationsFromReport(&b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{"ok": 1500 * time.Millisecond, "x[linux]": time.Second, "slow": time.Minute}
	if len(d) != len(want) {
		t.Errorf("durations %v, want %v", d, want)
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s: %s, want %s", k, d[k], v)
		}
	}
	if _, err := DurationsFromReport(strings.NewReader("not json")); err == nil || !strings.Contains(err.Error(), "not a modpipe JSON report") {
		t.Errorf("garbage: %v", err)
	}
}
