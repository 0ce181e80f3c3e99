package modpipe

import (
	"fmt"
	"os"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/internal/transfer"
)

// Artifact is a set of files a module uploaded with Context.Upload: a small
// JSON-serialisable manifest (name, and per file: slash-separated relative
// path, size, permission bits and SHA-256; empty directories listed) whose
// bytes live in the run's artifact store. Return it as a module's result,
// or as a field of one; a dependent calls Context.Download to get the
// files, on any instance. Do not build or edit one by hand: Download
// refuses a manifest that is not valid, and every byte it writes must match
// the digests.
type Artifact struct {
	// Version marks the value as an artifact ("v1").
	Version string `json:"modpipe_artifact"`
	// Name is the artifact's name, as given to Upload.
	Name string `json:"name"`
	// Digest is the SHA-256 of the manifest blob kept in the store.
	Digest string `json:"digest,omitempty"`
	// Origin is set when the artifact lives in a store only the instance
	// that uploaded it can read (distributed runs without a shared store).
	Origin string         `json:"origin,omitempty"`
	Files  []ArtifactFile `json:"files"`
	// Dirs lists the artifact's empty directories.
	Dirs []string `json:"dirs,omitempty"`
}

// ArtifactFile is one file of an Artifact.
type ArtifactFile struct {
	// Path is slash-separated and relative to the artifact's root.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Mode holds the permission bits, such as 0o755 for an executable.
	Mode uint32 `json:"mode"`
	// SHA256 is the lowercase hex digest of the file's content.
	SHA256 string `json:"sha256"`
}

// Bytes returns the total size of the artifact's files.
func (a Artifact) Bytes() int64 {
	var n int64
	for _, f := range a.Files {
		n += f.Size
	}
	return n
}

// Upload stores files as the artifact name and returns it. Paths are
// files, directories (with everything below them) or globs (path.Match
// syntax), relative to the working directory. In the artifact, paths are
// relative to the deepest directory holding everything uploaded (as with
// actions/upload-artifact): Upload("app", "build/out") holds the content
// of build/out, Upload("app", "dist/app") holds "app". Absolute paths, paths with "..", and symlinks
// that lead outside the working directory are refused. Content the store
// holds already is not sent again. The module's log says the size and rate
// of the transfer; while it runs, the live view shows its progress, or,
// without a live view, the log gets a progress line for a long transfer
// (after 10 s, then at each further quarter, at least once a minute).
//
// name is one path segment of letters, digits, '.', '_' and '-': it names
// the artifact's directory under --artifacts-out.
func (c *Context) Upload(name string, paths ...string) (Artifact, error) {
	env, err := c.r.artifacts.get()
	if err != nil {
		return Artifact{}, fmt.Errorf("uploading artifact %s: %w", name, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return Artifact{}, fmt.Errorf("uploading artifact %s: %w", name, err)
	}
	prog := &transfer.Progress{}
	end := c.showTransfer("↑ "+name, "uploading artifact "+name, prog)
	m, st, err := transfer.Upload(c, transfer.Target{Store: env.store, Name: env.name, Origin: env.origin, Progress: prog}, wd, name, paths)
	end()
	if err != nil {
		return Artifact{}, err
	}
	c.Logger().Info(fmt.Sprintf("uploaded artifact %s: %d files, %s (%s sent, the rest was in the store) to %s in %s (%s/s)",
		name, st.Files, formatBytes(st.Bytes), formatBytes(st.Moved), env.name, formatDuration(st.Time), formatBytes(rate(st.Moved, st.Time))))
	return artifactFromManifest(m), nil
}

// Download writes the files of a into dir (created if needed), with their
// relative paths and permission bits. Each file is verified against its
// SHA-256 before it appears under its final name; a file that does not
// match, or a manifest that would write outside dir, is an error and
// nothing of that file is kept. Each blob is fetched once per instance:
// modules downloading the same content on one instance share it. Progress
// is shown as for Upload.
func (c *Context) Download(a Artifact, dir string) error {
	env, err := c.r.artifacts.get()
	if err != nil {
		return fmt.Errorf("downloading artifact %s: %w", a.Name, err)
	}
	if a.Origin != "" && a.Origin != env.origin {
		return fmt.Errorf("downloading artifact %s: it was uploaded on another instance to that instance's own directory store, which this instance cannot read; give every instance a shared store with --artifact-store URL (or MODPIPE_ARTIFACT_STORE): s3://bucket/prefix or redis://host:port, or run with the Redis coordinator", a.Name)
	}
	m := a.manifest()
	src := env.source()
	src.Progress = &transfer.Progress{}
	end := c.showTransfer("↓ "+a.Name, "downloading artifact "+a.Name, src.Progress)
	st, err := transfer.Download(c, src, &m, dir)
	end()
	if err != nil {
		return err
	}
	c.Logger().Info(fmt.Sprintf("downloaded artifact %s: %d files, %s (%s fetched from %s, the rest from this instance's cache) in %s (%s/s)",
		a.Name, st.Files, formatBytes(st.Bytes), formatBytes(st.Moved), env.name, formatDuration(st.Time), formatBytes(rate(st.Bytes, st.Time))))
	return nil
}

// showTransfer shows the progress of one of the module's transfers until
// the returned function is called: a line in the live view, or, without
// one, progress lines in the module's log when the transfer is long.
func (c *Context) showTransfer(label, what string, p *transfer.Progress) (end func()) {
	if c.r.live != nil {
		return c.r.live.Transfer(c.node, label, p.Snapshot)
	}
	rep := c.r.artifacts.settings.progress
	rep.Log = func(done, total, rate int64) {
		c.Logger().Info(fmt.Sprintf("%s: %s of %s (%d%%), %s/s", what, formatBytes(done), formatBytes(total), done*100/total, formatBytes(rate)))
	}
	return p.Report(rep)
}

// UseArtifactStore sets the store for the run's artifacts; every instance
// of a distributed run must use one they all reach. It overrides
// --artifact-store. modpipe does not close it.
func (p *Pipeline) UseArtifactStore(s artifact.Store) *Pipeline {
	p.art.store = s
	return p
}

func (a Artifact) manifest() transfer.Manifest {
	m := transfer.Manifest{Version: a.Version, Name: a.Name, Digest: a.Digest, Origin: a.Origin, Dirs: a.Dirs, Files: make([]transfer.File, len(a.Files))}
	for i, f := range a.Files {
		m.Files[i] = transfer.File(f)
	}
	return m
}

func artifactFromManifest(m *transfer.Manifest) Artifact {
	a := Artifact{Version: m.Version, Name: m.Name, Digest: m.Digest, Origin: m.Origin, Dirs: m.Dirs, Files: make([]ArtifactFile, len(m.Files))}
	for i, f := range m.Files {
		a.Files[i] = ArtifactFile(f)
	}
	return a
}

func rate(n int64, d interface{ Seconds() float64 }) int64 {
	s := d.Seconds()
	if s <= 0 {
		return 0
	}
	return int64(float64(n) / s)
}

// formatBytes writes a size for people: 512 B, 1.5 KiB, 256.0 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
