package modpipe

// The run side of artifacts: which store a run uses, the per-instance
// temporary directory and cache, finding artifacts in results for the
// summary, and --artifacts-out.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/cluster"
	"github.com/modpipe/modpipe/internal/redact"
	"github.com/modpipe/modpipe/internal/render"
	"github.com/modpipe/modpipe/internal/transfer"
)

// artifactSettings are a pipeline's artifact settings.
type artifactSettings struct {
	store artifact.Store // UseArtifactStore (or the store --local-instances shares)
	url   string         // --artifact-store, MODPIPE_ARTIFACT_STORE
	out   string         // --artifacts-out, MODPIPE_ARTIFACTS_OUT
	run   *artifactEnv   // the running Run's, set by runWithArtifacts
	// progress times the progress lines of long transfers (Reporter's
	// defaults; tests set its clock).
	progress transfer.Reporter
}

// artifactEnv is one Run's artifact store, opened on first use.
type artifactEnv struct {
	settings    artifactSettings
	distributed bool
	coord       distributed.Coordinator

	once   sync.Once
	err    error
	store  artifact.Store
	name   string
	origin string
	tmp    string // the run's temporary directory ("" until needed)
	cache  *transfer.Cache
	closer io.Closer // a store this run opened
}

// get opens the run's store on first use.
func (e *artifactEnv) get() (*artifactEnv, error) {
	if e == nil {
		return nil, errors.New("no artifact store: artifacts are available only inside a running pipeline")
	}
	e.once.Do(func() { e.err = e.open() })
	return e, e.err
}

func (e *artifactEnv) open() error {
	switch {
	case e.settings.store != nil:
		e.store = e.settings.store
	case e.settings.url != "":
		s, err := openStoreURL(e.settings.url, e.coord)
		if err != nil {
			return err
		}
		e.store = s
		if c, ok := s.(io.Closer); ok {
			e.closer = c
		}
	default:
		if as, ok := e.coord.(distributed.ArtifactStorer); ok && e.distributed {
			s, err := as.ArtifactStore("")
			switch {
			case err == nil:
				e.store = s
				if c, ok := s.(io.Closer); ok {
					e.closer = c
				}
			case errors.Is(err, distributed.ErrNotConfigured):
				// The fork-safe fallback: one instance runs everything.
				e.distributed = false
			default:
				return fmt.Errorf("opening the coordinator's artifact store: %w", err)
			}
			if e.store != nil {
				break
			}
		}
		tmp, err := e.tempDir()
		if err != nil {
			return err
		}
		e.store = artifact.NewDirStore(filepath.Join(tmp, "store"))
		if e.distributed {
			// Only this instance reads it: Download elsewhere says so.
			e.origin = "instance-local:" + rand.Text()
		}
	}
	e.name = describeStore(e.store)
	if _, local := e.store.(*artifact.DirStore); !local {
		tmp, err := e.tempDir()
		if err != nil {
			return err
		}
		e.cache = transfer.NewCache(filepath.Join(tmp, "cache"), e.store, e.name)
	}
	return nil
}

func (e *artifactEnv) tempDir() (string, error) {
	if e.tmp == "" {
		dir, err := os.MkdirTemp("", "modpipe-artifacts-")
		if err != nil {
			return "", fmt.Errorf("creating the run's artifact directory: %w", err)
		}
		e.tmp = dir
	}
	return e.tmp, nil
}

func (e *artifactEnv) source() transfer.Source {
	return transfer.Source{Store: e.store, Name: e.name, Cache: e.cache}
}

// close closes what the run opened and removes its temporary directory.
func (e *artifactEnv) close() error {
	var err error
	if e.closer != nil {
		err = e.closer.Close()
	}
	if e.tmp != "" {
		err = errors.Join(err, os.RemoveAll(e.tmp))
	}
	return err
}

func describeStore(s artifact.Store) string {
	switch s := s.(type) {
	case *artifact.DirStore:
		return "directory store " + s.Dir()
	case fmt.Stringer:
		return s.String()
	}
	return fmt.Sprintf("artifact store %T", s)
}

// openStoreURL opens the store --artifact-store names.
func openStoreURL(raw string, coord distributed.Coordinator) (artifact.Store, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("--artifact-store %q is not a URL; use file:///path, s3://bucket/prefix, redis://host:port or rediss://host:port", redact.URL(raw))
	}
	switch scheme {
	case "file":
		dir := filepath.FromSlash(fileStoreDir(rest, runtime.GOOS))
		if dir == "" {
			return nil, errors.New("--artifact-store file:// needs a directory, such as file:///var/cache/artifacts")
		}
		return artifact.NewDirStore(dir), nil
	case "redis", "rediss", "redis+cluster", "rediss+cluster":
		as, ok := coord.(distributed.ArtifactStorer)
		if !ok {
			return nil, fmt.Errorf("--artifact-store %s: a Redis artifact store is opened through the Redis coordinator (p.UseCoordinator(redis.NewCoordinator(...))); without it, call p.UseArtifactStore(redis.NewArtifactStore(redis.Options{...})) in code", redact.URL(raw))
		}
		s, err := as.ArtifactStore(raw)
		if errors.Is(err, distributed.ErrNotConfigured) {
			return nil, fmt.Errorf("--artifact-store %s: this run has no Redis coordinator to keep artifacts through (%w); give the run one with --redis-url (or MODPIPE_REDIS_URL) and --total, or, on one instance, use --artifact-store file:///dir or s3://bucket/prefix", redact.URL(raw), err)
		}
		return s, err
	case "s3":
		s, err := openS3Store(raw)
		if err != nil {
			return nil, fmt.Errorf("--artifact-store %s: %w", redact.URL(raw), err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("--artifact-store %s: unknown scheme %q; use file://, s3://, redis://, rediss:// or redis+cluster://", redact.URL(raw), scheme)
}

// fileStoreDir is the directory, slash-separated, of a file:// URL whose
// part after "file://" is rest: on Windows, file:///C:/dir names C:/dir.
func fileStoreDir(rest, goos string) string {
	if goos == "windows" && len(rest) >= 3 && rest[0] == '/' && rest[2] == ':' &&
		('a' <= rest[1] && rest[1] <= 'z' || 'A' <= rest[1] && rest[1] <= 'Z') {
		return rest[1:]
	}
	return rest
}

// runWithArtifacts wraps one Run: it gives the run its artifact
// environment, publishes artifacts (--artifacts-out) once the master's
// summary is ready, and cleans up.
func (p *Pipeline) runWithArtifacts(ctx context.Context) (*Summary, error) {
	env := &artifactEnv{settings: p.art, distributed: p.distributedOn(), coord: p.coord}
	p.art.run = env
	defer func() { p.art.run = nil }()
	s, err := p.Run(ctx)
	if s != nil && s.Role != RoleWorker && p.art.out != "" {
		err = errors.Join(err, env.publish(ctx, s, p.art.out))
	}
	if cerr := env.close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("cleaning up artifacts: %w", cerr))
	}
	return s, err
}

// publish copies every artifact found in the summary's results into
// out/<artifact name>/.
func (e *artifactEnv) publish(ctx context.Context, s *Summary, out string) error {
	seen := map[string]string{} // name -> manifest digest
	var errs []error
	for _, m := range s.Modules {
		for _, a := range m.artifacts {
			if d, ok := seen[a.Name]; ok {
				if d != a.Digest {
					errs = append(errs, fmt.Errorf("--artifacts-out: two different artifacts are named %s (one from %s); give them distinct names", a.Name, m.Name))
				}
				continue
			}
			seen[a.Name] = a.Digest
			if _, err := e.get(); err != nil {
				return fmt.Errorf("--artifacts-out: %w", err)
			}
			if a.Origin != "" && a.Origin != e.origin {
				errs = append(errs, fmt.Errorf("--artifacts-out: artifact %s of %s lives in another instance's own store; give every instance a shared store with --artifact-store", a.Name, m.Name))
				continue
			}
			man := a.manifest()
			if _, err := transfer.Download(ctx, e.source(), &man, filepath.Join(out, a.Name)); err != nil {
				errs = append(errs, fmt.Errorf("--artifacts-out: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// ArtifactSummary lists one artifact a module returned, in the summary.
type ArtifactSummary struct {
	Name  string
	Files int
	Bytes int64
}

// maxListedArtifacts bounds how many artifacts one result may list.
const maxListedArtifacts = 1000

// findArtifacts returns the artifacts inside a module's result value: a
// typed value is walked by reflection (exported fields, pointers, slices,
// maps, interfaces); a value that arrived from another instance as JSON is
// searched for objects marked "modpipe_artifact", each validated as
// untrusted input.
func findArtifacts(v any) []Artifact {
	var out []Artifact
	switch x := v.(type) {
	case nil:
		return nil
	case cluster.RawValue:
		// An artifact's JSON holds its marker key, spelled out or with
		// escapes: a value with neither holds no artifact ("{}" of a Task
		// on every module of a distributed run), and is not parsed.
		if !bytes.Contains(x, []byte(artifactMarker)) && bytes.IndexByte(x, '\\') < 0 {
			return nil
		}
		var tree any
		if json.Unmarshal(x, &tree) == nil {
			artifactsInJSON(tree, 0, &out)
		}
		return out
	}
	if cannotHoldArtifacts(reflect.TypeOf(v)) {
		return nil // None, numbers, strings: nothing to walk
	}
	w := artifactWalker{may: map[reflect.Type]bool{}}
	w.walk(reflect.ValueOf(v), 0, &out)
	return out
}

func artifactsInJSON(v any, depth int, out *[]Artifact) {
	if depth > 64 || len(*out) >= maxListedArtifacts {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		if _, ok := x["modpipe_artifact"]; ok {
			raw, _ := json.Marshal(x)
			if m, err := transfer.Decode(strings.NewReader(string(raw))); err == nil {
				*out = append(*out, artifactFromManifest(m))
			}
			return
		}
		for _, e := range x {
			artifactsInJSON(e, depth+1, out)
		}
	case []any:
		for _, e := range x {
			artifactsInJSON(e, depth+1, out)
		}
	}
}

var artifactType = reflect.TypeFor[Artifact]()

// artifactMarker is the JSON key that marks an artifact (Artifact.Version).
const artifactMarker = `"modpipe_artifact"`

// cannotHoldArtifacts reports, without the walker's bookkeeping, the types
// of results that plainly hold no Artifact: scalars and empty structs.
func cannotHoldArtifacts(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Struct:
		return t.NumField() == 0
	}
	return false
}

type artifactWalker struct {
	may map[reflect.Type]bool // types that may hold an Artifact
}

// mayHold reports whether values of t can hold an Artifact, so that large
// values without any ([]byte, []int) are not walked.
func (w artifactWalker) mayHold(t reflect.Type) bool {
	if v, ok := w.may[t]; ok {
		return v
	}
	w.may[t] = false // a recursive type is answered by its other branches
	res := false
	switch t.Kind() {
	case reflect.Interface:
		res = true
	case reflect.Struct:
		if t == artifactType {
			res = true
			break
		}
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && w.mayHold(f.Type) {
				res = true
				break
			}
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		res = w.mayHold(t.Elem())
	case reflect.Map:
		res = w.mayHold(t.Elem())
	}
	w.may[t] = res
	return res
}

func (w artifactWalker) walk(v reflect.Value, depth int, out *[]Artifact) {
	if !v.IsValid() || depth > 64 || len(*out) >= maxListedArtifacts || !w.mayHold(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			w.walk(v.Elem(), depth+1, out)
		}
	case reflect.Struct:
		if v.Type() == artifactType {
			if a := v.Interface().(Artifact); a.Version != "" {
				*out = append(*out, a)
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				w.walk(v.Field(i), depth+1, out)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range min(v.Len(), 10*maxListedArtifacts) {
			w.walk(v.Index(i), depth+1, out)
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			w.walk(it.Value(), depth+1, out)
		}
	}
}

// summarizeArtifacts is the summary's list of artifacts.
func summarizeArtifacts(as []Artifact) []ArtifactSummary {
	if len(as) == 0 {
		return nil
	}
	out := make([]ArtifactSummary, len(as))
	for i, a := range as {
		out[i] = ArtifactSummary{Name: a.Name, Files: len(a.Files), Bytes: a.Bytes()}
	}
	return out
}

// applyArtifactSettings applies --artifact-store and --artifacts-out over
// their environment variables.
func (p *Pipeline) applyArtifactSettings(o *cliOptions, getenv func(string) string) {
	p.art.url = cmp.Or(strings.TrimSpace(getenv("MODPIPE_ARTIFACT_STORE")), p.art.url)
	p.art.out = cmp.Or(strings.TrimSpace(getenv("MODPIPE_ARTIFACTS_OUT")), p.art.out)
	if o.given["artifact-store"] {
		p.art.url = o.artifactStore
	}
	if o.given["artifacts-out"] {
		p.art.out = o.artifactsOut
	}
}

// shareLocalArtifactStore gives the instances of --local-instances one
// directory store, unless a store was chosen, and returns the function
// that removes it.
func (p *Pipeline) shareLocalArtifactStore(stderr io.Writer) func() {
	if p.art.store != nil || p.art.url != "" {
		return func() {}
	}
	dir, err := os.MkdirTemp("", "modpipe-artifacts-")
	if err != nil {
		fmt.Fprintf(stderr, "modpipe: no shared artifact store for the local instances (each keeps its own): %v\n", err)
		return func() {}
	}
	p.art.store = artifact.NewDirStore(dir)
	return func() {
		p.art.store = nil
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(stderr, "modpipe: removing the local instances' artifact store: %v\n", err)
		}
	}
}

// reportArtifact is an artifact in the JSON report.
type reportArtifact struct {
	Name  string `json:"name"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
}

// writeArtifacts lists the run's artifacts under the summary table.
func (s *Summary) writeArtifacts(w io.Writer) error {
	var rows [][]string
	for _, m := range s.Modules {
		for _, a := range m.Artifacts {
			rows = append(rows, []string{a.Name, m.Name, fmt.Sprint(a.Files), formatBytes(a.Bytes)})
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w, "\nArtifacts:"); err != nil {
		return err
	}
	return render.Table(w, []string{"ARTIFACT", "MODULE", "FILES", "SIZE"}, rows)
}

// writeArtifactsMarkdown lists the run's artifacts in the job summary.
func (s *Summary) writeArtifactsMarkdown(w io.Writer) error {
	var b strings.Builder
	for _, m := range s.Modules {
		for _, a := range m.Artifacts {
			fmt.Fprintf(&b, "| `%s` | %s | %d | %s |\n", a.Name, markdownCell(m.Name), a.Files, formatBytes(a.Bytes))
		}
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "\n### Artifacts\n\n| Artifact | Module | Files | Size |\n|---|---|---:|---:|\n%s", b.String())
	return err
}

func markdownCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
