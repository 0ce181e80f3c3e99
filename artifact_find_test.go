package modpipe

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modpipe/modpipe/internal/cluster"
)

// findArtifacts skips parsing results that cannot hold an artifact; the
// artifacts of results that can are still all found, whether their JSON
// spells the marker key out or with escapes.
func TestFindArtifactsInResultsOfEveryShape(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	art := Artifact{Version: "v1", Name: "app", Files: []ArtifactFile{{Path: "bin/app", Size: 1, Mode: 0o755, SHA256: digest}}}
	type holder struct {
		Build Artifact
		Note  string
	}
	raw, err := json.Marshal(holder{Build: art, Note: "n"})
	if err != nil {
		t.Fatal(err)
	}
	escaped := strings.Replace(string(raw), `"modpipe_artifact"`, `"modpipe\u005fartifact"`, 1)
	if escaped == string(raw) {
		t.Fatalf("the marker key is not in %s", raw)
	}
	for _, c := range []struct {
		name  string
		value any
		want  int
	}{
		{"typed", holder{Build: art}, 1},
		{"typed pointer", &art, 1},
		{"typed in a map", map[string]any{"x": art}, 1},
		{"JSON", cluster.RawValue(raw), 1},
		{"JSON with an escaped marker", cluster.RawValue(escaped), 1},
		{"JSON of a task", cluster.RawValue(`{}`), 0},
		{"JSON without an artifact", cluster.RawValue(`{"name":"app","files":[]}`), 0},
		{"None", None{}, 0},
		{"string", "modpipe_artifact", 0},
		{"int", 3, 0},
		{"nil", nil, 0},
	} {
		got := findArtifacts(c.value)
		if len(got) != c.want {
			t.Errorf("%s: found %d artifacts, want %d", c.name, len(got), c.want)
			continue
		}
		if c.want == 1 && (got[0].Name != "app" || len(got[0].Files) != 1 || got[0].Files[0].SHA256 != digest) {
			t.Errorf("%s: found %+v, want %+v", c.name, got[0], art)
		}
	}
}
