package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modpipe/modpipe/artifact"
)

// Mode says whether a run reads and writes the cache.
type Mode uint8

// Cache modes.
const (
	// ReadWrite looks entries up and stores new ones (the default).
	ReadWrite Mode = iota
	// Read looks entries up but never stores (pull-request runs).
	Read
	// Off neither looks up nor stores.
	Off
)

// ParseMode parses "readwrite", "read" or "off".
func ParseMode(s string) (Mode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "readwrite", "read-write", "rw":
		return ReadWrite, nil
	case "read", "readonly", "read-only":
		return Read, nil
	case "off", "none":
		return Off, nil
	}
	return ReadWrite, fmt.Errorf("cache mode %q is not one of readwrite, read, off", s)
}

// String returns the mode's name as --cache-mode takes it.
func (m Mode) String() string {
	switch m {
	case Read:
		return "read"
	case Off:
		return "off"
	}
	return "readwrite"
}

// MaxEntryBytes bounds a stored entry; a larger one is refused as corrupt
// and never read into memory.
const MaxEntryBytes = 64 << 20

// Key prefixes in the store. Both are valid artifact keys.
const (
	entryPrefix = "modpipe-cache/v1/e/"
	lastPrefix  = "modpipe-cache/v1/last/"
)

// EntryKey is the store key of the entry for key.
func EntryKey(key string) string { return entryPrefix + key[:2] + "/" + key }

// LastKey is the store key of the pointer to module's latest entry.
func LastKey(module string) string { return lastPrefix + digestOf("last", module)[:40] }

// Cache reads and writes entries in a store for one run. It is safe for
// concurrent use. A store failure never fails the run: the first one is
// reported through Warn and the cache is off for the rest of the run.
type Cache struct {
	Store artifact.Store
	Mode  Mode
	// SigningKey, when set, signs every entry written and refuses entries
	// (as misses) that are unsigned or signed with another key.
	SigningKey []byte
	// Warn reports a problem; nil discards it.
	Warn func(msg string)

	broken   atomic.Bool
	warnOnce sync.Once
}

// Hit reports whether the cache is usable for lookups.
func (c *Cache) active() bool {
	return c != nil && c.Store != nil && c.Mode != Off && !c.broken.Load()
}

// Writes reports whether the run stores entries.
func (c *Cache) Writes() bool { return c.active() && c.Mode == ReadWrite }

func (c *Cache) warn(msg string) {
	if c.Warn != nil {
		c.Warn(msg)
	}
}

// fail turns the cache off after a store failure, warning once.
func (c *Cache) fail(op string, err error) {
	c.broken.Store(true)
	c.warnOnce.Do(func() {
		c.warn(fmt.Sprintf("cache store failed (%s: %v); running the rest of this run without the cache (check --cache / MODPIPE_CACHE, or pass --cache-mode off)", op, err))
	})
}

// Lookup returns the entry stored for key, or nil on a miss. A corrupt,
// unverifiable or foreign entry is a miss with a warning naming module.
func (c *Cache) Lookup(ctx context.Context, module, key string) *Entry {
	if !c.active() {
		return nil
	}
	b, err := c.get(ctx, EntryKey(key))
	if errors.Is(err, artifact.ErrNotFound) {
		return nil
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			c.warn(fmt.Sprintf("cache entry of %s ignored: %v; the module runs", module, err))
			return nil
		}
		if ctx.Err() == nil {
			c.fail("looking up "+module, err)
		}
		return nil
	}
	e, err := decode(b, c.SigningKey, key)
	if err != nil {
		c.warn(fmt.Sprintf("cache entry of %s ignored: %v; the module runs (its new entry replaces it)", module, err))
		return nil
	}
	return e
}

// get reads a blob of at most MaxEntryBytes.
func (c *Cache) get(ctx context.Context, key string) ([]byte, error) {
	rc, err := c.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxEntryBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxEntryBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorrupt, MaxEntryBytes)
	}
	return b, nil
}

// Save stores e under e.Key and makes it the module's latest entry. It
// does nothing unless the mode is ReadWrite; a failure turns the cache off.
func (c *Cache) Save(ctx context.Context, e *Entry) {
	if !c.Writes() {
		return
	}
	b, err := encode(e, c.SigningKey)
	if err != nil {
		c.warn(fmt.Sprintf("not caching %s: %v", e.Module, err))
		return
	}
	if len(b) > MaxEntryBytes {
		c.warn(fmt.Sprintf("not caching %s: its entry is %d bytes, over the %d-byte limit (return artifacts instead of large values)", e.Module, len(b), MaxEntryBytes))
		return
	}
	if err := c.Store.Put(ctx, EntryKey(e.Key), bytes.NewReader(b), int64(len(b))); err != nil {
		if ctx.Err() == nil {
			c.fail("storing "+e.Module, err)
		}
		return
	}
	last := *e
	last.Result, last.Blobs = json.RawMessage("null"), nil
	if b, err = encode(&last, c.SigningKey); err == nil {
		err = c.Store.Put(ctx, LastKey(e.Module), bytes.NewReader(b), int64(len(b)))
	}
	if err != nil && ctx.Err() == nil {
		c.fail("storing the latest entry of "+e.Module, err)
	}
}

// Previous returns the inputs and duration of module's latest entry, or
// nil when there is none (or it cannot be trusted).
func (c *Cache) Previous(ctx context.Context, module string) *Entry {
	if c == nil || c.Store == nil || c.Mode == Off || c.broken.Load() {
		return nil
	}
	b, err := c.get(ctx, LastKey(module))
	if err != nil {
		return nil
	}
	e, err := decode(b, c.SigningKey, "")
	if err != nil || e.Module != module {
		return nil
	}
	return e
}

// LastDurations returns how long each of modules ran when its latest
// entry was stored, for modules that have one. Schedulers use it to run
// long modules first. Entries that fail verification are left out.
func LastDurations(ctx context.Context, store artifact.Store, signingKey []byte, modules []string) map[string]time.Duration {
	c := &Cache{Store: store, SigningKey: signingKey}
	out := map[string]time.Duration{}
	for _, m := range modules {
		if e := c.Previous(ctx, m); e != nil {
			out[m] = e.Duration
		}
	}
	return out
}
