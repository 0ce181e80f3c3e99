package workflow

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlanInstances(t *testing.T) {
	for _, c := range []struct {
		name    string
		need    []string
		caps    []string
		extra   int
		runners map[string]string
		want    []Instance
	}{
		{
			name: "nothing needed: the master alone",
			want: []Instance{{Index: 0, OS: "linux"}},
		},
		{
			name: "linux with docker and an extra worker",
			need: []string{"linux"}, caps: []string{"docker"}, extra: 1,
			want: []Instance{
				{Index: 0, OS: "linux", Capabilities: []string{"docker"}},
				{Index: 1, OS: "linux", Capabilities: []string{"docker"}},
			},
		},
		{
			name: "one worker per OS, in a fixed order, after the Linux ones",
			need: []string{"macos", "Windows", "linux", "windows", " "}, caps: []string{"docker"}, extra: 2,
			want: []Instance{
				{Index: 0, OS: "linux", Capabilities: []string{"docker"}},
				{Index: 1, OS: "linux", Capabilities: []string{"docker"}},
				{Index: 2, OS: "linux", Capabilities: []string{"docker"}},
				{Index: 3, OS: "windows"},
				{Index: 4, OS: "macos"},
			},
		},
		{
			name: "windows only still has a Linux master",
			need: []string{"windows"},
			want: []Instance{{Index: 0, OS: "linux"}, {Index: 1, OS: "windows"}},
		},
		{
			name: "an OS given as a capability routes like an OS",
			caps: []string{"macos", "DOCKER"},
			want: []Instance{{Index: 0, OS: "linux", Capabilities: []string{"docker"}}, {Index: 1, OS: "macos"}},
		},
		{
			name: "capabilities no hosted runner has are not offered",
			caps: []string{"gpu", "docker"},
			want: []Instance{{Index: 0, OS: "linux", Capabilities: []string{"docker"}}},
		},
		{
			name: "runner overrides",
			need: []string{"linux", "windows", "freebsd"}, extra: 1,
			runners: map[string]string{"linux": "linux-large", "freebsd": "self-hosted-freebsd"},
			want: []Instance{
				{Index: 0, OS: "linux", Runner: "linux-large"},
				{Index: 1, OS: "linux", Runner: "linux-large"},
				{Index: 2, OS: "windows"},
				{Index: 3, OS: "freebsd", Runner: "self-hosted-freebsd"},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Plan(c.need, c.caps, c.extra, c.runners)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Plan(%q, %q, %d, %v)\n got %+v\nwant %+v", c.need, c.caps, c.extra, c.runners, got, c.want)
			}
			// Whatever Plan returns, both generators accept.
			for _, g := range generators {
				if _, err := g.gen(Spec{Instances: got}); err != nil {
					t.Errorf("%s rejects Plan's instances: %v", g.kind, err)
				}
			}
		})
	}
}

func TestPlanInstancesDoNotShareSlices(t *testing.T) {
	in, _, err := Plan(nil, []string{"docker"}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	in[0].Capabilities[0] = "changed"
	if in[1].Capabilities[0] != "docker" {
		t.Errorf("instances share their capability slice")
	}
}

func TestPlanNotes(t *testing.T) {
	_, notes, err := Plan([]string{"linux"}, []string{"docker"}, 0, nil)
	if err != nil || len(notes) != 0 {
		t.Errorf("docker on hosted Linux: notes %q, err %v; want none", notes, err)
	}

	_, notes, err = Plan(nil, []string{"gpu", "docker", "tpu", "gpu"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 {
		t.Fatalf("want one note each for gpu and tpu, got %q", notes)
	}
	for i, c := range []string{"gpu", "tpu"} {
		n := notes[i]
		if !strings.Contains(n, `"`+c+`"`) || !strings.Contains(n, "self-hosted runner") || !strings.Contains(n, "--worker "+c) || !strings.Contains(n, "--runner linux=LABEL") {
			t.Errorf("note for %s does not say how to add a worker that offers it: %q", c, n)
		}
		// Only options of the generator's command line: a user of
		// `workflow github` cannot reach Go fields or a worker's own flags.
		if strings.Contains(n, "Instance.") || strings.Contains(n, "--capability") {
			t.Errorf("note for %s names something the user of the generator cannot reach: %q", c, n)
		}
		if strings.Contains(n, "docker") {
			t.Errorf("note mentions docker, which is offered: %q", n)
		}
	}

	_, notes, err = Plan(nil, []string{"docker"}, 0, map[string]string{"linux": "my-linux", "macos": "my-mac"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`capability "docker" is assumed on the Linux runner "my-linux" (an override, not a hosted runner): make sure it is installed there`,
		"the runner override for macos is unused: no module needs macos",
	}
	if !reflect.DeepEqual(notes, want) {
		t.Errorf("notes\n got %q\nwant %q", notes, want)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		need    []string
		caps    []string
		extra   int
		runners map[string]string
		want    []string // all in the error
	}{
		{"freebsd without a runner", []string{"linux", "freebsd"}, nil, 0, nil,
			[]string{"freebsd", "no hosted runner", "self-hosted", "--runner freebsd=LABEL", "--runner freebsd=self-hosted-freebsd"}},
		{"freebsd as a capability", nil, []string{"freebsd"}, 0, map[string]string{"windows": "w"},
			[]string{"freebsd", "--runner freebsd="}},
		{"unknown OS", []string{"plan9"}, nil, 0, nil, []string{`"plan9"`, "linux, windows, macos, freebsd"}},
		{"darwin is not an OS name", []string{"darwin"}, nil, 0, nil, []string{`"darwin"`, "macos"}},
		{"negative extra", nil, nil, -1, nil, []string{"--extra-workers -1", "negative", "0 or more"}},
		{"too many workers", nil, nil, 300, nil, []string{"--extra-workers 300", "256"}},
		{"override for an unknown OS", nil, nil, 0, map[string]string{"solaris": "x"}, []string{`--runner "solaris=x"`, `"solaris"`}},
		{"bad override label", nil, nil, 0, map[string]string{"linux": "a b"}, []string{`--runner "linux=a b"`, `"a b"`}},
		{"empty override label", nil, nil, 0, map[string]string{"linux": ""}, []string{`""`}},
		{"bad capability", nil, []string{"a,b"}, 0, nil, []string{`"a,b"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, notes, err := Plan(c.need, c.caps, c.extra, c.runners)
			if err == nil {
				t.Fatalf("no error; instances %+v, notes %q", in, notes)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if in != nil || notes != nil {
				t.Errorf("results despite the error: %+v %q", in, notes)
			}
		})
	}
}

func TestPlanWorkers(t *testing.T) {
	in, notes, err := PlanWorkers([]string{"linux", "windows"}, []string{"docker", "CGO", "gpu"}, 1,
		[][]string{{"cgo", "Docker"}, {"gpu", "cgo", "gpu"}, {"extra"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Instance{
		{Index: 0, OS: "linux", Capabilities: []string{"docker"}},
		{Index: 1, OS: "linux", Capabilities: []string{"docker"}},
		{Index: 2, OS: "linux", Capabilities: []string{"cgo", "docker"}},
		{Index: 3, OS: "linux", Capabilities: []string{"cgo", "docker", "gpu"}},
		{Index: 4, OS: "linux", Capabilities: []string{"docker", "extra"}},
		{Index: 5, OS: "windows"},
	}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("instances\n got %+v\nwant %+v", in, want)
	}
	// cgo and gpu are offered by a worker: no note for them; extra is
	// offered but nothing needs it.
	if want := []string{`--worker extra: no module requires capability "extra"`}; !reflect.DeepEqual(notes, want) {
		t.Errorf("notes %q, want %q", notes, want)
	}
	// The workers come out of Spec validation whole.
	if _, err := GitHub(Spec{Instances: in}); err != nil {
		t.Errorf("GitHub refuses the planned workers: %v", err)
	}

	for _, c := range []struct {
		workers [][]string
		want    string
	}{
		{[][]string{{"windows"}}, "is an OS"},
		{[][]string{{"a b"}}, `"a b"`},
		{[][]string{{}}, "offers no capability"},
		{[][]string{{"cgo"}, {" "}}, "worker 2"},
	} {
		in, notes, err := PlanWorkers(nil, nil, 0, c.workers, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || in != nil || notes != nil {
			t.Errorf("workers %q: %+v %q, error %v; want an error containing %q and no results", c.workers, in, notes, err, c.want)
		}
	}
}
