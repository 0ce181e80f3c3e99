package cache

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// FormatVersion is the version of the entry format; entries of another
// version are misses.
const FormatVersion = 1

// Entry is what the cache keeps for one key: data only, never code.
type Entry struct {
	// Key is the key the entry was stored under; an entry found under
	// another key is refused (a copied entry cannot stand in for another).
	Key string `json:"key"`
	// Module is the module's name in the run.
	Module string `json:"module"`
	// Created is when the entry was stored.
	Created time.Time `json:"created"`
	// Duration is how long the module's body ran: the time a hit saves.
	Duration time.Duration `json:"duration_ns"`
	// Result is the module's result encoded as JSON; artifacts in it carry
	// their manifests (file digests).
	Result json.RawMessage `json:"result"`
	// Blobs are the artifact-store keys the result's artifacts need; a hit
	// whose blobs are gone is a miss.
	Blobs []string `json:"blobs,omitempty"`
	// Inputs are the fingerprints the key was computed from, for
	// explaining later misses.
	Inputs Fingerprints `json:"inputs"`
}

// envelope is the stored form: the entry's exact bytes and their HMAC.
type envelope struct {
	Format int             `json:"modpipe_cache"`
	MAC    string          `json:"mac,omitempty"`
	Entry  json.RawMessage `json:"entry"`
}

// ErrCorrupt is wrapped by decoding errors of damaged entries.
var ErrCorrupt = errors.New("corrupt cache entry")

// ErrUnsigned is wrapped by decoding errors of entries whose signature is
// missing or wrong while a signing key is set.
var ErrUnsigned = errors.New("cache entry signature missing or wrong")

// encode serialises e, signed with key when key is not empty.
func encode(e *Entry, key []byte) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding the cache entry of %s: %w", e.Module, err)
	}
	env := envelope{Format: FormatVersion, Entry: body}
	if len(key) > 0 {
		env.MAC = sign(key, body)
	}
	return json.Marshal(env)
}

func sign(key, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("modpipe-cache-entry/v1\n"))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// decode parses a stored entry, checks its signature when key is set, and
// checks that it belongs to wantKey.
func decode(b []byte, key []byte, wantKey string) (*Entry, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if env.Format != FormatVersion {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrCorrupt, env.Format, FormatVersion)
	}
	if len(key) > 0 {
		if env.MAC == "" {
			return nil, fmt.Errorf("%w: the entry is unsigned", ErrUnsigned)
		}
		if !hmac.Equal([]byte(env.MAC), []byte(sign(key, env.Entry))) {
			return nil, fmt.Errorf("%w: the HMAC does not match (written with another MODPIPE_CACHE_SIGNING_KEY, or tampered with)", ErrUnsigned)
		}
	}
	var e Entry
	if err := json.Unmarshal(env.Entry, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if wantKey != "" && e.Key != wantKey {
		return nil, fmt.Errorf("%w: stored under %s but made for %s", ErrCorrupt, shortKey(wantKey), shortKey(e.Key))
	}
	if len(e.Result) == 0 || !json.Valid(e.Result) {
		return nil, fmt.Errorf("%w: the result is not valid JSON", ErrCorrupt)
	}
	return &e, nil
}

func shortKey(k string) string {
	if len(k) > 12 {
		return k[:12]
	}
	return k
}
