package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/distributed"
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
// step. A failed Put deletes its chunks; a killed one leaves chunks that
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
	client  *goredis.Client
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

func (s *ArtifactStore) connect() (*goredis.Client, artifactKeys, error) {
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
	s.where = artRedactURL(raw)
	if strings.Contains(strings.SplitN(raw, "://", 2)[0], "+cluster") {
		// Its scripts still build chunk key names inside Lua, which a
		// cluster cannot route.
		return fmt.Errorf("redis artifact store: %s is a Redis Cluster, which the Redis artifact store does not support yet; choose another store with --artifact-store (s3://bucket/prefix, or file:///path on a file system every instance shares)", s.where)
	}
	opts, err := goredis.ParseURL(raw)
	if err != nil {
		// ParseURL errors can quote the URL; never show the password.
		return fmt.Errorf("redis artifact store: the Redis URL %s is not valid; use redis://[user:password@]host:port[/db] or rediss:// for TLS", s.where)
	}
	opts.DialTimeout = s.opts.ConnectTimeout
	// One command moves at most a chunk; allow for slow links.
	opts.ReadTimeout = s.opts.OperationTimeout + time.Duration(s.cfg.chunk>>20)*time.Second
	opts.WriteTimeout = opts.ReadTimeout
	// No automatic retries: a failed Put is retried whole by its caller
	// (a reservation must not be counted twice).
	opts.MaxRetries = -1
	s.client = goredis.NewClient(opts)
	s.keys = artifactKeys{base: s.opts.KeyPrefix + ":{" + runID + "}:art:"}
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

// artifactKeys names every key of the store; all share the run's hash tag.
type artifactKeys struct {
	base string // "<prefix>:{<run id>}:art:"
}

func (k artifactKeys) used() string               { return k.base + "used" }     // counter: bytes reserved or stored
func (k artifactKeys) manifest(key string) string { return k.base + "m:" + key } // string: "<id> <size> <chunk>"
func (k artifactKeys) chunkBase() string          { return k.base + "c:" }       // + "<id>:<index>": one chunk
func (k artifactKeys) chunk(id string, i int64) string {
	return k.chunkBase() + id + ":" + strconv.FormatInt(i, 10)
}

// Lua shared by the scripts: ARGV[1] is the chunk key base, ARGV[2] the
// TTL in milliseconds; KEYS[1] is the used counter.
const artLuaCommon = `
local cbase, ttl = ARGV[1], tonumber(ARGV[2])
local function release(n)
  if n <= 0 then return end
  if redis.call('DECRBY', KEYS[1], n) < 0 then redis.call('SET', KEYS[1], 0) end
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local function drop(id, size, chunk)
  local n = math.ceil(size / chunk)
  for i = 0, n - 1 do redis.call('UNLINK', cbase .. id .. ':' .. i) end
end
local function parse(m)
  local id, size, chunk = string.match(m, '^(%x+) (%d+) (%d+)$')
  if not id or tonumber(chunk) <= 0 then return nil end
  return id, tonumber(size), tonumber(chunk)
end
`

// reserve: ARGV[3] size, ARGV[4] budget. Returns {1, used} or {0, used}.
var artReserve = goredis.NewScript(artLuaCommon + `
local size, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + size > budget then return {0, used} end
redis.call('INCRBY', KEYS[1], size)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, used + size}
`)

// commit: KEYS[2] manifest; ARGV[3] id, ARGV[4] size, ARGV[5] chunk size.
// Returns 1, or -1 if a chunk is missing (expired): nothing changes then.
var artCommit = goredis.NewScript(artLuaCommon + `
local id, size, chunk = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 0, math.ceil(size / chunk) - 1 do
  if redis.call('PEXPIRE', cbase .. id .. ':' .. i, ttl) == 0 then return -1 end
end
local old = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], id .. ' ' .. ARGV[4] .. ' ' .. ARGV[5], 'PX', ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
if old then
  local oid, osize, ochunk = parse(old)
  if oid and oid ~= id then
    drop(oid, osize, ochunk)
    release(osize)
  end
end
return 1
`)

// abort: ARGV[3] id, ARGV[4] size, ARGV[5] chunk size: drops the chunks of
// an upload that will not be committed and releases its reservation.
var artAbort = goredis.NewScript(artLuaCommon + `
drop(ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
release(tonumber(ARGV[4]))
return 1
`)

// delete: KEYS[2] manifest. Returns 1 if a blob was deleted, 0 if absent.
var artDelete = goredis.NewScript(artLuaCommon + `
local old = redis.call('GET', KEYS[2])
if not old then return 0 end
redis.call('DEL', KEYS[2])
local oid, osize, ochunk = parse(old)
if oid then
  drop(oid, osize, ochunk)
  release(osize)
end
return 1
`)

func (s *ArtifactStore) scriptArgs(k artifactKeys, extra ...any) []any {
	return append([]any{k.chunkBase(), s.cfg.retention.Milliseconds()}, extra...)
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
	client, k, err := s.connect()
	if err != nil {
		return err
	}
	res, err := artReserve.Run(ctx, client, []string{k.used()}, s.scriptArgs(k, size, s.cfg.budget)...).Int64Slice()
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
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	chunk := int64(s.cfg.chunk)
	defer func() {
		if err != nil {
			// The caller's context may be what failed; clean up anyway.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.OperationTimeout)
			defer cancel()
			_ = artAbort.Run(actx, client, []string{k.used()}, s.scriptArgs(k, id, size, chunk)...).Err()
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
	ok, err := artCommit.Run(ctx, client, []string{k.used(), k.manifest(key)}, s.scriptArgs(k, id, size, chunk)...).Int64()
	if err != nil {
		return s.describe(ctx, "put", key, err)
	}
	if ok != 1 {
		return fmt.Errorf("redis artifact store: put %s: chunks expired before the upload was committed; raise the retention (redis.WithArtifactRetention, now %s) or check the server's eviction policy (maxmemory-policy noeviction)", key, s.cfg.retention)
	}
	return nil
}

// blobInfo is a parsed manifest.
type blobInfo struct {
	id          string
	size, chunk int64
}

func (s *ArtifactStore) lookup(ctx context.Context, op, key string) (*goredis.Client, artifactKeys, blobInfo, error) {
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
	if err1 != nil || err2 != nil || size < 0 || chunk <= 0 || chunk > 512<<20 {
		return blobInfo{}, bad
	}
	return blobInfo{id: f[0], size: size, chunk: chunk}, nil
}

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
	client *goredis.Client
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
	if err := artDelete.Run(ctx, client, []string{k.used(), k.manifest(key)}, s.scriptArgs(k)...).Err(); err != nil {
		return s.describe(ctx, "delete", key, err)
	}
	return nil
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

// artRedactURL returns the URL without user information, for messages.
func artRedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

func artTrim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
