package modpipe

// Caching: a module opted in with Cache(inputs...) is skipped when an
// entry for its key exists; see DESIGN.md "Caching" and internal/cache.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/internal/cache"
	"github.com/modpipe/modpipe/internal/cluster"
	"github.com/modpipe/modpipe/internal/engine"
	"github.com/modpipe/modpipe/internal/logbuf"
	"github.com/modpipe/modpipe/internal/redact"
)

// CacheInput is one input of a cached module's key; see Cache.
type CacheInput struct {
	apply func(s *cacheSpec)
}

// cacheSpec is a module's declared cache inputs.
type cacheSpec struct {
	files    []string
	env      []string
	commands [][]string
	values   []namedValue
	version  string
}

type namedValue struct {
	name string
	v    any
}

// Cache opts the module into caching: when an entry for its key exists
// (from an earlier run, on any instance sharing the cache store) the
// stored result is restored, the body does not run, and the module ends
// Cached. The key covers the inputs given here and, always, the module's
// name and matrix target, the OS and architecture, the results of its
// dependencies (including the digests of artifacts they returned) and
// its CacheVersion.
//
// Only cache modules whose result follows from these inputs: a module
// that deploys, publishes or reads the network must not be cached. The
// result must survive a JSON round trip (exported fields).
func Cache(inputs ...CacheInput) Option {
	return func(d *moduleDef) {
		if d.cache == nil {
			d.cache = &cacheSpec{}
		}
		for _, in := range inputs {
			if in.apply == nil {
				d.errs = append(d.errs, errors.New("Cache: a zero CacheInput; build inputs with InputFiles, InputEnv, InputCommand, InputValue or CacheVersion"))
				continue
			}
			in.apply(d.cache)
		}
	}
}

// InputFiles makes the content of the files matching globs an input.
// Globs are slash-separated, relative to the working directory, and "**"
// matches any number of directories ("**/*.go", "go.sum"). Their order
// does not matter; files outside them do not count.
func InputFiles(globs ...string) CacheInput {
	return CacheInput{func(s *cacheSpec) { s.files = append(s.files, globs...) }}
}

// InputEnv makes the values of environment variables inputs. Values are
// hashed, never stored or printed; an explanation names the variable.
func InputEnv(names ...string) CacheInput {
	return CacheInput{func(s *cacheSpec) { s.env = append(s.env, names...) }}
}

// InputCommand makes the output and exit code of a command an input, such
// as InputCommand("go", "version"). It runs once per run, however many
// modules name it.
func InputCommand(name string, args ...string) CacheInput {
	c := append([]string{name}, args...)
	return CacheInput{func(s *cacheSpec) { s.commands = append(s.commands, c) }}
}

// InputValue makes v, encoded as JSON when the key is computed, an input
// named name.
func InputValue(name string, v any) CacheInput {
	return CacheInput{func(s *cacheSpec) { s.values = append(s.values, namedValue{name, v}) }}
}

// CacheVersion sets the module's cache version. Change it (for example
// from "1" to "2") when the module's code changes in a way its inputs do
// not show: every earlier entry of the module then misses, and
// --explain-cache says "cache version bumped". It is a CacheInput, next to
// the module's other inputs, so that removing Cache removes it too.
func CacheVersion(v string) CacheInput {
	return CacheInput{func(s *cacheSpec) { s.version = v }}
}

// UseCache sets the store of cache entries; it overrides --cache and
// MODPIPE_CACHE. Any artifact.Store works: artifact.NewDirStore, an S3
// store, or a Redis one (redis.NewCacheStore). modpipe does not close it.
func (p *Pipeline) UseCache(s artifact.Store) *Pipeline {
	p.cache.store = s
	return p
}

// cacheSettings are a pipeline's cache settings.
type cacheSettings struct {
	store   artifact.Store // UseCache
	url     string         // --cache, MODPIPE_CACHE
	mode    string         // --cache-mode, MODPIPE_CACHE_MODE ("" = by event)
	explain bool           // --explain-cache, or --report
	getenv  func(string) string
	run     *cacheEnv // the running Run's
}

// cacheEnv is one Run's cache.
type cacheEnv struct {
	c       *cache.Cache
	hasher  *cache.Hasher
	explain bool
	closer  io.Closer
	wg      sync.WaitGroup

	mu       sync.Mutex
	warnings []string
}

// cacheNode is a cached module's state in one run.
type cacheNode struct {
	mu      sync.Mutex
	looked  bool
	key     string
	inputs  cache.Fingerprints
	hit     *cache.Entry
	value   any
	saved   time.Duration
	stored  bool
	changes []cache.Change
	note    string
}

// CacheResult is what the cache did for one module (ModuleResult.Cache).
type CacheResult struct {
	// Key is the module's cache key ("" when it could not be computed).
	Key string
	// Hit reports that the result came from the cache; Saved is how long
	// the module ran when its entry was made: the time the hit saved.
	Hit   bool
	Saved time.Duration
	// Stored reports that this run stored a new entry.
	Stored bool
	// Changes says, for a miss, what differs from the module's previous
	// entry (computed with --explain-cache or --report).
	Changes []string
	// Note explains why the cache was not used for this module, if so.
	Note string
}

// cacheWanted reports whether any module of the pipeline uses the cache.
func (p *Pipeline) cacheWanted() bool {
	for _, d := range p.modules {
		if d.cache != nil {
			return true
		}
	}
	return false
}

// runWithCache gives the run its cache and waits for entries being
// stored before returning.
func (p *Pipeline) runWithCache(ctx context.Context) (*Summary, error) {
	env, err := p.openCache()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	p.cache.run = env
	restoreArt := p.art.store
	if env.c.Store != nil && p.art.store == nil && p.art.url == "" && !p.distributedOn() {
		// Entries and the artifacts their results name live in one store,
		// so that a hit finds its artifacts in the next run too.
		p.art.store = env.c.Store
	}
	defer func() {
		p.cache.run = nil
		p.art.store = restoreArt
	}()
	defer p.durationsFromCache(ctx, env.c)() // durations.go
	s, err := p.Run(ctx)
	env.wg.Wait()
	if env.closer != nil {
		if cerr := env.closer.Close(); cerr != nil {
			env.warn(fmt.Sprintf("closing the cache store: %v", cerr))
		}
	}
	if s != nil {
		s.CacheWarnings = env.warningList()
	}
	return s, err
}

func (e *cacheEnv) warn(msg string) {
	e.mu.Lock()
	e.warnings = append(e.warnings, msg)
	e.mu.Unlock()
}

func (e *cacheEnv) warningList() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.warnings...)
}

// openCache resolves the run's cache: store, mode and signing key.
func (p *Pipeline) openCache() (*cacheEnv, error) {
	getenv := p.cache.getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env := &cacheEnv{explain: p.cache.explain, hasher: &cache.Hasher{Getenv: p.cache.getenv}}
	c := &cache.Cache{Warn: env.warn}
	env.c = c
	mode, err := resolveCacheMode(p.cache.mode, getenv)
	if err != nil {
		return nil, err
	}
	c.Mode = mode
	if key := getenv("MODPIPE_CACHE_SIGNING_KEY"); key != "" {
		if len(key) < 16 {
			return nil, errors.New("MODPIPE_CACHE_SIGNING_KEY is shorter than 16 bytes; use a long random value (openssl rand -hex 32)")
		}
		c.SigningKey = []byte(key)
		env.hasher.Secret = c.SigningKey
		if !slices.Contains(p.secrets, key) {
			p.secrets = append(p.secrets, key)
		}
	}
	if mode == cache.Off {
		return env, nil
	}
	switch {
	case p.cache.store != nil:
		c.Store = p.cache.store
	case p.cache.url != "":
		s, err := p.openCacheURL(p.cache.url)
		if err != nil {
			return nil, err
		}
		c.Store = s
		if cl, ok := s.(io.Closer); ok {
			env.closer = cl
		}
	default:
		dir, err := os.UserCacheDir()
		if err != nil {
			env.warn(fmt.Sprintf("no cache: no user cache directory (%v); pass --cache file:///dir", err))
			c.Mode = cache.Off
			return env, nil
		}
		c.Store = artifact.NewDirStore(filepath.Join(dir, "modpipe", "cache"))
	}
	return env, nil
}

// resolveCacheMode is --cache-mode, else MODPIPE_CACHE_MODE, else read for
// pull-request and merge-request runs (untrusted code) and readwrite
// otherwise.
func resolveCacheMode(flagMode string, getenv func(string) string) (cache.Mode, error) {
	if m := cmp.Or(strings.TrimSpace(flagMode), strings.TrimSpace(getenv("MODPIPE_CACHE_MODE"))); m != "" {
		mode, err := cache.ParseMode(m)
		if err != nil {
			return mode, fmt.Errorf("--cache-mode: %w", err)
		}
		return mode, nil
	}
	if untrustedEvent(getenv) {
		return cache.Read, nil
	}
	return cache.ReadWrite, nil
}

// untrustedEvent reports a pull-request (GitHub) or merge-request (GitLab)
// run: its code is not trusted to write entries others will use.
func untrustedEvent(getenv func(string) string) bool {
	switch getenv("GITHUB_EVENT_NAME") {
	case "pull_request", "pull_request_target":
		return true
	}
	return getenv("CI_MERGE_REQUEST_IID") != "" || getenv("CI_PIPELINE_SOURCE") == "merge_request_event"
}

// openCacheURL opens --cache: the same URL forms as --artifact-store.
func (p *Pipeline) openCacheURL(raw string) (artifact.Store, error) {
	scheme, _, _ := strings.Cut(raw, "://")
	if redisScheme(scheme) { // store_check.go
		if cs, ok := p.coord.(cacheStorer); ok {
			return cs.CacheStore(raw)
		}
		return nil, fmt.Errorf("--cache %s: a Redis cache is opened through the Redis coordinator (p.UseCoordinator(redis.NewCoordinator(...))); without it, call p.UseCache(redis.NewCacheStore(redis.Options{...}, retention)) in code", redact.URL(raw))
	}
	s, err := openStoreURL(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("--cache %s (the same URL forms as --artifact-store): %w", redact.URL(raw), err)
	}
	return s, nil
}

// cachedAttempt runs a cached module's attempt: the first attempt looks
// the key up and, on a hit, returns the stored result without running
// the body; a successful run stores a new entry.
func (r *run) cachedAttempt(ctx context.Context, i, attempt int) (any, error) {
	return r.cachedRun(ctx, i, attempt, r.runAttempt)
}

// withCache wraps a node's Run in the cache's lookup and store.
func (r *run) withCache(body func(ctx context.Context, i, attempt int) (any, error)) func(ctx context.Context, i, attempt int) (any, error) {
	return func(ctx context.Context, i, attempt int) (any, error) {
		return r.cachedRun(ctx, i, attempt, body)
	}
}

func (r *run) cachedRun(ctx context.Context, i, attempt int, body func(ctx context.Context, i, attempt int) (any, error)) (any, error) {
	cn := r.nodes[i].cache
	if v, ok := r.cacheLookup(ctx, i); ok {
		return v, nil
	}
	start := time.Now()
	v, err := body(ctx, i, attempt)
	if err == nil && r.cacheEnvOf() != nil {
		cn.mu.Lock()
		key := cn.key
		cn.mu.Unlock()
		if key != "" && r.cacheEnvOf().c.Writes() {
			r.cacheSave(ctx, i, v, time.Since(start))
		}
	}
	return v, err
}

func (r *run) cacheEnvOf() *cacheEnv { return r.cacheEnv }

// cacheLookup computes node i's key once per run and looks it up.
func (r *run) cacheLookup(ctx context.Context, i int) (any, bool) {
	cn := r.nodes[i].cache
	env := r.cacheEnv
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.looked {
		return cn.value, cn.hit != nil
	}
	cn.looked = true
	if env == nil || env.c.Mode == cache.Off {
		cn.note = "cache off"
		return nil, false
	}
	spec, err := r.cacheSpec(ctx, i)
	if err == nil {
		cn.key, cn.inputs, err = env.hasher.Key(ctx, spec)
	}
	if err != nil {
		cn.note = "no cache key: " + r.secrets.String(err.Error())
		r.logNote(i, "cache not used: "+cn.note)
		return nil, false
	}
	if e := env.c.Lookup(ctx, r.nodes[i].name, cn.key); e != nil {
		v, why := r.restore(ctx, i, e)
		if why == "" {
			cn.hit, cn.value, cn.saved = e, v, e.Duration
			return v, true
		}
		cn.changes = []cache.Change{{Kind: "entry-gone", Name: why}}
		r.logNote(i, "cache entry not used: "+why)
		return nil, false
	}
	if env.explain {
		var prev cache.Fingerprints
		if pe := env.c.Previous(ctx, r.nodes[i].name); pe != nil {
			prev = pe.Inputs
		}
		cn.changes = cache.Explain(prev, cn.inputs)
		if len(cn.changes) == 0 {
			cn.changes = []cache.Change{{Kind: "entry-gone", Name: "evicted, expired or never stored"}}
		}
		r.logInfo(i, "cache miss: "+joinChanges(cn.changes))
	}
	return nil, false
}

func (r *run) logInfo(i int, msg string) {
	slog.New(logbuf.NewHandler(&r.nodes[i].log, slog.LevelDebug)).Info(msg)
}

func joinChanges(cs []cache.Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

// cacheSpec gathers node i's key inputs.
func (r *run) cacheSpec(ctx context.Context, i int) (cache.Spec, error) {
	n := &r.nodes[i]
	cs := n.def.cache
	s := cache.Spec{
		Module: n.name, Target: n.target, Platform: runtime.GOOS + "/" + runtime.GOARCH,
		Version: cs.version, Files: cs.files, Env: cs.env, Commands: cs.commands,
	}
	for _, nv := range cs.values {
		b, err := json.Marshal(nv.v)
		if err != nil {
			return s, fmt.Errorf("InputValue %q does not encode as JSON: %w", nv.name, err)
		}
		s.Values = append(s.Values, cache.Value{Name: nv.name, Data: b})
	}
	for _, d := range n.deps {
		b, err := r.depJSON(ctx, d.node)
		if err != nil {
			return s, err
		}
		s.Deps = append(s.Deps, cache.Value{Name: r.nodes[d.node].name, Data: b})
	}
	return s, nil
}

// depJSON is a dependency's result as JSON, or its status when it has none.
func (r *run) depJSON(ctx context.Context, node int) ([]byte, error) {
	var v any
	if r.dist != nil {
		val, err := r.dist.values.Get(ctx, r.nodes[node].name)
		if err != nil {
			return []byte(`{"modpipe_no_result":true}`), nil
		}
		return val.Raw, nil
	}
	o := r.sched.Outcome(node)
	if o.Status != engine.Succeeded {
		return json.Marshal(map[string]string{"modpipe_status": o.Status.String()})
	}
	v = o.Value
	if raw, ok := v.(cluster.RawValue); ok {
		return raw, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("the result of dependency %s does not encode as JSON: %w", r.nodes[node].name, err)
	}
	return b, nil
}

// restore decodes an entry's result into the module's result type and
// checks that the artifacts it names are still in the artifact store. It
// returns why the entry cannot be used, or "".
func (r *run) restore(ctx context.Context, i int, e *cache.Entry) (any, string) {
	t := r.nodes[i].def.resultType
	pv := reflect.New(t)
	if err := json.Unmarshal(e.Result, pv.Interface()); err != nil {
		return nil, fmt.Sprintf("the stored result does not decode as %s (%v)", t, err)
	}
	if len(e.Blobs) > 0 {
		if r.artifacts == nil {
			return nil, "its artifacts cannot be checked: no artifact store"
		}
		env, err := r.artifacts.get()
		if err != nil {
			return nil, "its artifacts cannot be checked: " + err.Error()
		}
		for _, b := range e.Blobs {
			if _, err := env.store.Stat(ctx, b); err != nil {
				return nil, fmt.Sprintf("an artifact of its result is gone from %s (%s)", env.name, b)
			}
		}
	}
	return pv.Elem().Interface(), ""
}

// cacheSave stores node i's result in the background; runWithCache waits.
func (r *run) cacheSave(ctx context.Context, i int, v any, d time.Duration) {
	n := &r.nodes[i]
	cn := n.cache
	raw, err := json.Marshal(v)
	if err != nil {
		r.logNote(i, fmt.Sprintf("result not cached: it does not encode as JSON: %v", err))
		return
	}
	var blobs []string
	for _, a := range findArtifacts(v) {
		if k, err := artifact.DigestKey(a.Digest); err == nil {
			blobs = append(blobs, k)
		}
		for _, f := range a.Files {
			if k, err := artifact.DigestKey(f.SHA256); err == nil {
				blobs = append(blobs, k)
			}
		}
	}
	cn.mu.Lock()
	e := &cache.Entry{Key: cn.key, Module: n.name, Created: time.Now(), Duration: d, Result: raw, Blobs: blobs, Inputs: cn.inputs}
	cn.stored = true
	cn.mu.Unlock()
	env := r.cacheEnv
	env.wg.Add(1)
	go func() {
		defer env.wg.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		env.c.Save(sctx, e)
	}()
}

// cacheResult is node i's CacheResult for the summary, nil for modules
// without Cache.
func (r *run) cacheResult(i int) *CacheResult {
	cn := r.nodes[i].cache
	if cn == nil {
		return nil
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if !cn.looked {
		return nil
	}
	res := &CacheResult{Key: cn.key, Hit: cn.hit != nil, Saved: cn.saved, Stored: cn.stored, Note: cn.note}
	for _, c := range cn.changes {
		res.Changes = append(res.Changes, c.String())
	}
	return res
}

// cacheHit reports whether node i's result came from the cache.
func (r *run) cacheHit(i int) bool {
	cn := r.nodes[i].cache
	if cn == nil {
		return false
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.hit != nil
}

// CacheSaved is the time cache hits saved in the run: the sum of the
// durations recorded in their entries.
func (s *Summary) CacheSaved() time.Duration {
	var d time.Duration
	for _, m := range s.Modules {
		if m.Cache != nil && m.Cache.Hit {
			d += m.Cache.Saved
		}
	}
	return d
}

// writeCache writes the cache line under the summary table: hits, misses
// and time saved, the explanation of each miss when computed, and
// warnings.
func (s *Summary) writeCache(w io.Writer) error {
	hits, misses := 0, 0
	var b strings.Builder
	for _, m := range s.Modules {
		if m.Cache == nil {
			continue
		}
		if m.Cache.Hit {
			hits++
			continue
		}
		misses++
		if len(m.Cache.Changes) > 0 {
			fmt.Fprintf(&b, "  %s: %s\n", m.Name, strings.Join(m.Cache.Changes, "; "))
		}
	}
	if hits+misses == 0 && len(s.CacheWarnings) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "\nCache: %d hits, %d misses; saved %s\n", hits, misses, formatDuration(s.CacheSaved())); err != nil {
		return err
	}
	if b.Len() > 0 {
		if _, err := fmt.Fprintf(w, "Cache misses, what changed since each module's previous entry:\n%s", b.String()); err != nil {
			return err
		}
	}
	for _, warn := range s.CacheWarnings {
		if _, err := fmt.Fprintf(w, "Cache warning: %s\n", warn); err != nil {
			return err
		}
	}
	return nil
}

// reportCache is a module's cache information in the JSON report.
type reportCache struct {
	Key     string   `json:"key,omitempty"`
	Hit     bool     `json:"hit"`
	SavedMS float64  `json:"saved_ms,omitempty"`
	Stored  bool     `json:"stored,omitempty"`
	Changes []string `json:"changes,omitempty"`
	Note    string   `json:"note,omitempty"`
}

func newReportCache(c *CacheResult) *reportCache {
	if c == nil {
		return nil
	}
	return &reportCache{Key: c.Key, Hit: c.Hit, SavedMS: ms(c.Saved), Stored: c.Stored, Changes: c.Changes, Note: c.Note}
}

// applyCacheSettings applies --cache, --cache-mode and --explain-cache
// over their environment variables. A JSON report (--report) carries the
// explanations too, so it turns them on.
func (p *Pipeline) applyCacheSettings(o *cliOptions, getenv func(string) string) error {
	p.cache.getenv = getenv
	p.cache.url = cmp.Or(strings.TrimSpace(getenv("MODPIPE_CACHE")), p.cache.url)
	if o.given["cache"] {
		p.cache.url = o.cacheURL
	}
	if o.given["cache-mode"] {
		if _, err := cache.ParseMode(o.cacheMode); err != nil {
			return fmt.Errorf("--cache-mode: %w", err)
		}
		p.cache.mode = o.cacheMode
	} else if m := getenv("MODPIPE_CACHE_MODE"); m != "" {
		if _, err := cache.ParseMode(m); err != nil {
			return fmt.Errorf("MODPIPE_CACHE_MODE: %w", err)
		}
	}
	if o.given["explain-cache"] {
		p.cache.explain = o.explainCache
	}
	if o.report != "" {
		p.cache.explain = true
	}
	return nil
}

// masterCacheLookup is the master's lookup before dispatching (nil when
// no module is cached): a hit runs on the master and never reaches a
// worker.
func (r *run) masterCacheLookup() func(ctx context.Context, i int) bool {
	if r.cacheEnv == nil {
		return nil
	}
	return func(ctx context.Context, i int) bool {
		if r.nodes[i].cache == nil {
			return false
		}
		_, hit := r.cacheLookup(ctx, i)
		return hit
	}
}
