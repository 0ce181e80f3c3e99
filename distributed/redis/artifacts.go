package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
	"github.com/modpipe/modpipe/internal/ident"
	"github.com/modpipe/modpipe/internal/redact"
)

// ArtifactStore is an artifact.Store in Redis, normally the server of the
// run's coordinator. Create it with NewArtifactStore; it connects on first
// use and is safe for concurrent use.
//
// A blob is stored as chunks (1 MiB by default) under a fresh upload id,
// each written as it is read, so neither side holds more than a chunk.
// Once every chunk is in, one Lua script checks they all exist and sets
// the key's manifest ("<id> <size> <chunk size>"), which is what makes the
// blob visible; the chunks of a value it replaces are deleted in the same
// step. Scripts receive every key they touch in KEYS (chunk keys are built
// in Go, keys.go): the caller reads the manifest it replaces or deletes,
// passes that value's chunk keys, and the script goes ahead only if the
// manifest is still the one read (else the caller reads it again). So the
// store also works on a Redis Cluster (a redis+cluster:// URL). A failed Put deletes its chunks; a killed one leaves chunks that
// nothing points to, which expire with the run.
//
// Every key lives under "<prefix>:{<run id>}:art:" (the run's hash tag)
// with the retention as TTL, refreshed on each write. The store keeps a
// budget: bytes reserved by Puts in progress plus bytes of committed blobs
// may not exceed it, and a Put over budget fails before it sends a byte.
// A Put killed mid-upload keeps its reservation until the run's keys
// expire.
type ArtifactStore struct {
	opts Options
	cfg  artifactConfig

	mu      sync.Mutex
	client  goredis.UniversalClient
	keys    artifactKeys
	bound   bool
	bindErr error
	where   string // redacted URL, for messages
	closed  bool
}

var (
	_ artifact.Store        = (*ArtifactStore)(nil)
	_ distributed.RunBinder = (*ArtifactStore)(nil)
)

// DefaultArtifactBudget is the default ceiling of a run's artifact bytes
// in Redis.
const DefaultArtifactBudget = 1 << 30

// ArtifactOption tunes an ArtifactStore.
type ArtifactOption func(*artifactConfig)

type artifactConfig struct {
	budget    int64
	retention time.Duration
	chunk     int
}

// WithArtifactBudget sets how many bytes of artifacts the run may keep in
// Redis (default DefaultArtifactBudget, 1 GiB). Count what the server's
// maxmemory allows next to the coordinator's own keys. A Put reserves its
// size before it sends a byte; an overwrite needs room for the old and the
// new value until it commits.
func WithArtifactBudget(bytes int64) ArtifactOption {
	return func(c *artifactConfig) { c.budget = bytes }
}

// WithArtifactRetention sets how long artifacts live after their last
// write (default: Options.KeyTTL, the run's keys' TTL, 24h).
func WithArtifactRetention(d time.Duration) ArtifactOption {
	return func(c *artifactConfig) { c.retention = d }
}

// WithArtifactChunkSize sets the size of one chunk (default 1 MiB; 64 KiB
// to 64 MiB). Bigger chunks mean fewer round trips and more memory per
// transfer.
func WithArtifactChunkSize(bytes int) ArtifactOption {
	return func(c *artifactConfig) { c.chunk = bytes }
}

// NewArtifactStore returns an artifact store on the Redis server and run
// that o names (the same Options as NewCoordinator: URL, KeyPrefix, RunID,
// KeyTTL and the timeouts; empty fields take the same defaults and
// environment variables). Nothing is contacted until the first call.
func NewArtifactStore(o Options, opts ...ArtifactOption) *ArtifactStore {
	o = o.withDefaults()
	cfg := artifactConfig{budget: DefaultArtifactBudget, retention: o.KeyTTL, chunk: 1 << 20}
	for _, opt := range opts {
		opt(&cfg)
	}
	cfg.chunk = min(max(cfg.chunk, 64<<10), 64<<20)
	if cfg.retention <= 0 {
		cfg.retention = o.KeyTTL
	}
	return &ArtifactStore{opts: o, cfg: cfg}
}

// BindRun implements distributed.RunBinder: modpipe passes the run id and
// URL it resolved from flags and environment; Options set in code win.
func (s *ArtifactStore) BindRun(b distributed.RunBinding) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bound {
		s.bound = true
		s.bindErr = s.connectLocked(b)
	}
	return s.bindErr
}

func (s *ArtifactStore) connect() (goredis.UniversalClient, artifactKeys, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bound {
		s.bound = true
		s.bindErr = s.connectLocked(distributed.RunBinding{})
	}
	if s.bindErr == nil && s.closed {
		return nil, artifactKeys{}, errors.New("redis artifact store: used after Close")
	}
	return s.client, s.keys, s.bindErr
}

func (s *ArtifactStore) connectLocked(b distributed.RunBinding) error {
	raw, runID, err := resolveRun("redis artifact store", s.opts, b)
	if err != nil {
		return err
	}
	s.where = redact.URL(raw)
	o := s.opts
	// One command moves at most a chunk; allow for slow links. newClient
	// sets no automatic retries: a failed Put is retried whole by its
	// caller (a reservation must not be counted twice).
	o.OperationTimeout += time.Duration(s.cfg.chunk>>20) * time.Second
	client, err := newClient(raw, o)
	if err != nil {
		// Parse errors can quote the URL; never show the password.
		return fmt.Errorf("redis artifact store: the Redis URL %s is not valid (%s); use redis://[user:password@]host:port[/db], rediss:// for TLS, or redis+cluster://host1:port1,host2:port2 for a Redis Cluster", s.where, redact.String(err.Error(), raw))
	}
	s.client = client
	s.keys = newArtifactKeys(s.opts.KeyPrefix, runID)
	return nil
}

// Close closes the store's connections.
func (s *ArtifactStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil || s.closed {
		s.closed = true
		return nil
	}
	s.closed = true
	return s.client.Close()
}

// maxChunks bounds the chunks of one blob: a script call receives every
// chunk key of the blob it commits, replaces or deletes.
const maxChunks = 1 << 16

// Lua shared by the scripts: KEYS[1] is the used counter, ARGV[1] the TTL
// in milliseconds. Every key a script touches is one of its KEYS.
const artLuaCommon = `
local ttl = tonumber(ARGV[1])
local function release(n)
  if n <= 0 then return end
  if redis.call('DECRBY', KEYS[1], n) < 0 then redis.call('SET', KEYS[1], 0) end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local function drop(from)
  for i = from, #KEYS do redis.call('UNLINK', KEYS[i]) end
end
`

// reserve: ARGV[2] size, ARGV[3] budget. Returns {1, used} or {0, used}.
const artReserveLua = artLuaCommon + `
local size, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + size > budget then return {0, used} end
redis.call('INCRBY', KEYS[1], size)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, used + size}
`

var artReserve = goredis.NewScript(artReserveLua)

// commit: KEYS[2] the manifest, KEYS[3] to KEYS[2+n] the new chunks, the
// rest the chunks of the value it replaces; ARGV[2] the new manifest,
// ARGV[3] n, ARGV[4] the manifest the caller read ("" for none), ARGV[5]
// the bytes to release with it. Returns 1; -1 if a new chunk is missing
// (expired); -2 if the manifest is no longer ARGV[4]. Nothing changes
// unless it returns 1.
const artCommitLua = artLuaCommon + `
local n = tonumber(ARGV[3])
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[4] then return -2 end
for i = 3, 2 + n do
  if redis.call('PEXPIRE', KEYS[i], ttl) == 0 then return -1 end
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
drop(3 + n)
release(tonumber(ARGV[5]))
return 1
`

var artCommit = goredis.NewScript(artCommitLua)

// abort: KEYS[2] onwards the chunks of an upload that will not be
// committed; ARGV[2] its reservation, released.
const artAbortLua = artLuaCommon + `
drop(2)
release(tonumber(ARGV[2]))
return 1
`

var artAbort = goredis.NewScript(artAbortLua)

// delete: KEYS[2] the manifest, the rest its chunks; ARGV[2] the manifest
// the caller read, ARGV[3] the bytes to release. Returns 1 if the blob was
// deleted, 0 if absent, -2 if the manifest is no longer ARGV[2].
const artDeleteLua = artLuaCommon + `
local cur = redis.call('GET', KEYS[2])
if not cur then return 0 end
if cur ~= ARGV[2] then return -2 end
redis.call('DEL', KEYS[2])
drop(3)
release(tonumber(ARGV[3]))
return 1
`

var artDelete = goredis.NewScript(artDeleteLua)

// artRetries bounds how often a commit or delete reads the manifest again
// because a concurrent writer changed it in between.
const artRetries = 20

// replaced returns the chunk keys and the size of the blob manifest m
// names, for a script that replaces or deletes it: none for "" or a
// malformed manifest (its chunks, if any, expire with the run).
func (k artifactKeys) replaced(m string) ([]string, int64) {
	info, err := parseManifest(m)
	if err != nil {
		return nil, 0
	}
	return k.chunks(info.id, info.chunkCount()), info.size
}

// current reads the manifest of key ("" when there is none).
func current(ctx context.Context, client goredis.UniversalClient, k artifactKeys, key string) (string, error) {
	m, err := client.Get(ctx, k.manifest(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	return m, err
}

// Put implements artifact.Store.
func (s *ArtifactStore) Put(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	if err := artifact.ValidKey(key); err != nil {
		return fmt.Errorf("redis artifact store: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("redis artifact store: put %s: %w: negative size %d", key, artifact.ErrSizeMismatch, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis artifact store: put %s: %w", key, err)
	}
	chunk := int64(s.cfg.chunk)
	if n := (size + chunk - 1) / chunk; n > maxChunks {
		return fmt.Errorf("redis artifact store: put %s: %d bytes make %d chunks of %d bytes, over the limit of %d; raise the chunk size (redis.WithArtifactChunkSize) or use an S3 store (--artifact-store s3://bucket/prefix)", key, size, n, chunk, maxChunks)
	}
	client, k, err := s.connect()
	if err != nil {
		return err
	}
	res, err := artReserve.Run(ctx, client, []string{k.used()}, s.ttl(), size, s.cfg.budget).Int64Slice()
	if err != nil {
		return s.describe(ctx, "put", key, err)
	}
	if len(res) != 2 {
		return fmt.Errorf("redis artifact store: put %s: unexpected reply %v from the reserve script", key, res)
	}
	if res[0] != 1 {
		return fmt.Errorf("redis artifact store: put %s: %w: %d bytes do not fit the run's artifact budget of %d bytes in Redis (%d in use); raise it with redis.WithArtifactBudget (within the server's maxmemory), or use an S3 store (--artifact-store s3://bucket/prefix) for large artifacts",
			key, artifact.ErrStoreFull, size, s.cfg.budget, res[1])
	}
	id := ident.Random(16)
	sent := int64(0) // chunks whose SET was sent (it may have landed even if it failed)
	defer func() {
		if err != nil {
			// The caller's context may be what failed; clean up anyway.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.OperationTimeout)
			defer cancel()
			_ = artAbort.Run(actx, client, append([]string{k.used()}, k.chunks(id, sent)...), s.ttl(), size).Err()
		}
	}()
	sr := artifact.SizedReader(ctx, r, size)
	buf := make([]byte, min(chunk, size))
	for i, off := int64(0), int64(0); off < size; i++ {
		n := min(chunk, size-off)
		if _, err := io.ReadFull(sr, buf[:n]); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = fmt.Errorf("%w: the reader ended early", artifact.ErrSizeMismatch)
			}
			return fmt.Errorf("redis artifact store: put %s: %w", key, err)
		}
		sent++
		if err := client.Set(ctx, k.chunk(id, i), buf[:n], s.cfg.retention).Err(); err != nil {
			return s.describe(ctx, "put", key, err)
		}
		off += n
	}
	if _, err := sr.Read(nil); err != io.EOF {
		return fmt.Errorf("redis artifact store: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis artifact store: put %s: %w", key, err)
	}
	return s.commit(ctx, client, k, key, blobInfo{id: id, size: size, chunk: chunk})
}

// commit makes the uploaded blob b the value of key, dropping the value
// it replaces.
func (s *ArtifactStore) commit(ctx context.Context, client goredis.UniversalClient, k artifactKeys, key string, b blobInfo) error {
	manifest := b.id + " " + strconv.FormatInt(b.size, 10) + " " + strconv.FormatInt(b.chunk, 10)
	fresh := k.chunks(b.id, b.chunkCount())
	for range artRetries {
		old, err := current(ctx, client, k, key)
		if err != nil {
			return s.describe(ctx, "put", key, err)
		}
		oldChunks, oldSize := k.replaced(old)
		keys := append(append([]string{k.used(), k.manifest(key)}, fresh...), oldChunks...)
		ok, err := artCommit.Run(ctx, client, keys, s.ttl(), manifest, len(fresh), old, oldSize).Int64()
		switch {
		case err != nil:
			return s.describe(ctx, "put", key, err)
		case ok == 1:
			return nil
		case ok == -1:
			return fmt.Errorf("redis artifact store: put %s: chunks expired before the upload was committed; raise the retention (redis.WithArtifactRetention, now %s) or check the server's eviction policy (maxmemory-policy noeviction)", key, s.cfg.retention)
		}
		// -2: another writer changed the manifest since it was read.
	}
	return fmt.Errorf("redis artifact store %s: put %s: the key changed under concurrent writers %d times in a row; nothing was committed: try again", s.where, key, artRetries)
}

// ttl is the scripts' ARGV[1]: the retention in milliseconds.
func (s *ArtifactStore) ttl() int64 { return s.cfg.retention.Milliseconds() }

// blobInfo is a parsed manifest.
type blobInfo struct {
	id          string
	size, chunk int64
}

func (s *ArtifactStore) lookup(ctx context.Context, op, key string) (goredis.UniversalClient, artifactKeys, blobInfo, error) {
	if err := artifact.ValidKey(key); err != nil {
		return nil, artifactKeys{}, blobInfo{}, fmt.Errorf("redis artifact store: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, artifactKeys{}, blobInfo{}, fmt.Errorf("redis artifact store: %s %s: %w", op, key, err)
	}
	client, k, err := s.connect()
	if err != nil {
		return nil, k, blobInfo{}, err
	}
	m, err := client.Get(ctx, k.manifest(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, k, blobInfo{}, fmt.Errorf("redis artifact store %s: %s %s: %w", s.where, op, key, artifact.ErrNotFound)
	}
	if err != nil {
		return nil, k, blobInfo{}, s.describe(ctx, op, key, err)
	}
	info, err := parseManifest(m)
	if err != nil {
		return nil, k, blobInfo{}, fmt.Errorf("redis artifact store %s: %s %s: %w; delete the key %s", s.where, op, key, err, k.manifest(key))
	}
	return client, k, info, nil
}

// parseManifest checks a manifest read back from Redis (untrusted: any
// client of the server can write it).
func parseManifest(m string) (blobInfo, error) {
	f := strings.Fields(m)
	bad := fmt.Errorf("malformed artifact manifest %q", artTrim(m))
	if len(f) != 3 || len(f[0]) != 32 {
		return blobInfo{}, bad
	}
	if _, err := hex.DecodeString(f[0]); err != nil {
		return blobInfo{}, bad
	}
	size, err1 := strconv.ParseInt(f[1], 10, 64)
	chunk, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil || size < 0 || chunk <= 0 || chunk > 512<<20 || (size+chunk-1)/chunk > maxChunks {
		return blobInfo{}, bad
	}
	return blobInfo{id: f[0], size: size, chunk: chunk}, nil
}

// chunkCount is how many chunks the blob has.
func (b blobInfo) chunkCount() int64 { return (b.size + b.chunk - 1) / b.chunk }

// Get implements artifact.Store: chunks are fetched one at a time as the
// stream is read.
func (s *ArtifactStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	client, k, info, err := s.lookup(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	return &chunkReader{ctx: ctx, s: s, client: client, k: k, key: key, info: info}, nil
}

type chunkReader struct {
	ctx    context.Context
	s      *ArtifactStore
	client goredis.UniversalClient
	k      artifactKeys
	key    string
	info   blobInfo
	next   int64  // index of the next chunk to fetch
	off    int64  // bytes handed out
	cur    []byte // rest of the current chunk
	err    error
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.cur) == 0 {
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	c.off += int64(n)
	return n, nil
}

// WriteTo hands whole chunks to w (used by io.Copy), saving a copy.
func (c *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(c.cur) == 0 {
			if err := c.fill(); err == io.EOF {
				return total, nil
			} else if err != nil {
				return total, err
			}
		}
		n, err := w.Write(c.cur)
		c.cur = c.cur[n:]
		c.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// fill fetches the next chunk into c.cur, or returns io.EOF after the
// last one; a missing or wrong-sized chunk is an error, never a short
// stream.
func (c *chunkReader) fill() error {
	if c.err != nil {
		return c.err
	}
	if err := c.ctx.Err(); err != nil {
		return fmt.Errorf("redis artifact store: get %s: %w", c.key, err)
	}
	if c.off == c.info.size {
		c.err = io.EOF
		return io.EOF
	}
	want := min(c.info.chunk, c.info.size-c.off)
	b, err := c.client.Get(c.ctx, c.k.chunk(c.info.id, c.next)).Bytes()
	switch {
	case errors.Is(err, goredis.Nil):
		c.err = fmt.Errorf("redis artifact store %s: get %s: chunk %d is gone (the blob was replaced, deleted or expired while read): %w", c.s.where, c.key, c.next, io.ErrUnexpectedEOF)
		return c.err
	case err != nil:
		return c.s.describe(c.ctx, "get", c.key, err)
	case int64(len(b)) != want:
		c.err = fmt.Errorf("redis artifact store %s: get %s: chunk %d has %d bytes, want %d (damaged)", c.s.where, c.key, c.next, len(b), want)
		return c.err
	}
	c.cur = b
	c.next++
	return nil
}

func (c *chunkReader) Close() error {
	c.cur = nil
	if c.err == nil {
		c.err = errors.New("redis artifact store: read after Close")
	}
	return nil
}

// Stat implements artifact.Store.
func (s *ArtifactStore) Stat(ctx context.Context, key string) (int64, error) {
	_, _, info, err := s.lookup(ctx, "stat", key)
	if err != nil {
		return 0, err
	}
	return info.size, nil
}

// Delete implements artifact.Store.
func (s *ArtifactStore) Delete(ctx context.Context, key string) error {
	if err := artifact.ValidKey(key); err != nil {
		return fmt.Errorf("redis artifact store: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis artifact store: delete %s: %w", key, err)
	}
	client, k, err := s.connect()
	if err != nil {
		return err
	}
	for range artRetries {
		old, err := current(ctx, client, k, key)
		if err != nil {
			return s.describe(ctx, "delete", key, err)
		}
		if old == "" {
			return nil
		}
		chunks, size := k.replaced(old)
		res, err := artDelete.Run(ctx, client, append([]string{k.used(), k.manifest(key)}, chunks...), s.ttl(), old, size).Int64()
		if err != nil {
			return s.describe(ctx, "delete", key, err)
		}
		if res != -2 {
			return nil
		}
		// -2: another writer changed the manifest since it was read.
	}
	return fmt.Errorf("redis artifact store %s: delete %s: the key changed under concurrent writers %d times in a row; nothing was deleted: try again", s.where, key, artRetries)
}

// Used reports how many bytes of the budget are taken (stored blobs and
// Puts in progress).
func (s *ArtifactStore) Used(ctx context.Context) (int64, error) {
	client, k, err := s.connect()
	if err != nil {
		return 0, err
	}
	n, err := client.Get(ctx, k.used()).Int64()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.describe(ctx, "used", "", err)
	}
	return n, nil
}

// describe turns a client error into one that says what to do, without
// the URL's password.
func (s *ArtifactStore) describe(ctx context.Context, op, key string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("redis artifact store: %s %s: %w", op, key, cerr)
	}
	msg := err.Error()
	hint := ""
	switch {
	case strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH"):
		hint = ": Redis refused the credentials: check the user and password in the Redis URL"
	case strings.Contains(msg, "OOM"):
		hint = ": the server is out of memory (maxmemory): lower the artifact budget (redis.WithArtifactBudget) or raise maxmemory"
	case strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout"):
		hint = ": cannot reach Redis at " + s.where + ": check the URL and that the server is up"
	}
	return fmt.Errorf("redis artifact store %s: %s %s%s: %w", s.where, op, key, hint, err)
}

func artTrim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
