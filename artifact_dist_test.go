package modpipe_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modpipe/modpipe"
	artstore "github.com/modpipe/modpipe/artifact"
)

// built is a result that carries an artifact as a field.
type built struct {
	Version string
	Bin     modpipe.Artifact
}

// artifactModules builds "bin/tool" (executable) on a "builder" instance
// and checks it on the master; checked records what the master saw.
func artifactModules(checked *atomic.Value) []modpipe.AnyModule {
	build := modpipe.New("build", func(c *modpipe.Context) (built, error) {
		dir, err := os.MkdirTemp(".", "build-")
		if err != nil {
			return built{}, err
		}
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			return built{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("tool built on a worker"), 0o755); err != nil {
			return built{}, err
		}
		a, err := c.Upload("tool", filepath.Join(dir, "bin", "tool"))
		return built{Version: "1", Bin: a}, err
	}, modpipe.RequiresCapability("builder"))
	use := modpipe.Task("use", func(c *modpipe.Context) error {
		b, err := modpipe.Result(c, build)
		if err != nil {
			return err
		}
		dst, err := os.MkdirTemp(".", "got-")
		if err != nil {
			return err
		}
		if err := c.Download(b.Bin, dst); err != nil {
			return err
		}
		path := filepath.Join(dst, filepath.FromSlash(b.Bin.Files[0].Path))
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		checked.Store(string(data) + " " + fi.Mode().Perm().String())
		return nil
	}, modpipe.DependsOn(build), modpipe.PinToMaster())
	return []modpipe.AnyModule{build, use}
}

func TestArtifactCrossesInstancesThroughASharedStore(t *testing.T) {
	t.Chdir(t.TempDir())
	var checked atomic.Value
	c := newCluster(t, 2, artifactModules(&checked)...)
	c.artifacts = artstore.NewDirStore(t.TempDir())
	master := c.start(0, "linux")
	c.start(1, "builder", "linux")
	master.wait(t)
	if master.err != nil || master.summary.Failed() {
		t.Fatalf("run failed: %v\n%s", master.err, master.out)
	}
	want := "tool built on a worker -rwxr-xr-x"
	if runtime.GOOS == "windows" {
		want = "tool built on a worker -rw-rw-rw-"
	}
	if got := checked.Load(); got != want {
		t.Errorf("the master read %q, want %q", got, want)
	}
	m := master.module(t, "build")
	if m.Instance != 1 || len(m.Artifacts) != 1 || m.Artifacts[0] != (modpipe.ArtifactSummary{Name: "tool", Files: 1, Bytes: 22}) {
		t.Errorf("build on instance %d lists artifacts %+v, want tool: 1 file, 22 bytes", m.Instance, m.Artifacts)
	}
}

func TestArtifactWithoutSharedStoreFailsClearlyElsewhere(t *testing.T) {
	t.Chdir(t.TempDir())
	var checked atomic.Value
	c := newCluster(t, 2, artifactModules(&checked)...)
	master := c.start(0, "linux")
	c.start(1, "builder", "linux")
	master.wait(t)
	if master.err != nil {
		t.Fatal(master.err)
	}
	m := master.module(t, "use")
	if m.Status != modpipe.Failed || !strings.Contains(m.Error, "--artifact-store") || !strings.Contains(m.Error, "another instance") {
		t.Errorf("use: %s %q; want a failure telling to set --artifact-store", m.Status, m.Error)
	}
}

func TestUploadRefusesPathsOutsideTheWorkingDirectory(t *testing.T) {
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(parent, "wd"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(parent, "wd"))
	var errs []string
	up := modpipe.Task("up", func(c *modpipe.Context) error {
		for _, p := range []string{"../secret", filepath.Join(parent, "secret"), "nothing-*"} {
			if _, err := c.Upload("a", p); err != nil {
				errs = append(errs, err.Error())
			}
		}
		_, err := c.Upload("bad/name", ".")
		if err != nil {
			errs = append(errs, err.Error())
		}
		return nil
	})
	p := modpipe.NewPipeline().Add(up)
	p.Output = io.Discard
	if _, err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 4 {
		t.Fatalf("%d of 4 uploads refused: %q", len(errs), errs)
	}
	for _, want := range []string{"leaves the working directory", "absolute", "matches nothing", "artifact name"} {
		if !strings.Contains(strings.Join(errs, "\n"), want) {
			t.Errorf("no error says %q: %q", want, errs)
		}
	}
}
