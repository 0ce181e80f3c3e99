// Package cache skips modules whose inputs did not change: it composes a
// module's cache key from its declared inputs, keeps entries (data only,
// signed when a key is set) in an artifact.Store, and explains misses by
// comparing a module's inputs with those of its previous entry.
package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"

	"lukechampine.com/blake3"
)

// Spec is what a module's cache key covers.
type Spec struct {
	// Module is the module's name in the run ("name[target]" for a matrix
	// variant); Target its matrix target.
	Module, Target string
	// Platform is GOOS/GOARCH of the instance whose result is cached.
	Platform string
	// Version is the user's cache version (CacheVersion); bumping it
	// invalidates every entry of the module.
	Version string
	// Files are globs relative to the hasher's directory.
	Files []string
	// Env names environment variables; their values are hashed, never kept.
	Env []string
	// Commands are commands whose output (and exit code) is an input.
	Commands [][]string
	// Values are named values, already encoded (JSON).
	Values []Value
	// Deps are the module's dependencies and their results (JSON, which
	// includes the digests of any artifacts they returned).
	Deps []Value
}

// Value is a named input given as bytes.
type Value struct {
	Name string
	Data []byte
}

// Fingerprint kinds: the prefix of each entry of Fingerprints.
const (
	KindModule   = "module"   // the module name and matrix target
	KindPlatform = "platform" // GOOS/GOARCH
	KindVersion  = "version"  // the CacheVersion
	KindFile     = "file"     // one input file, by path
	KindEnv      = "env"      // one environment variable, by name (its value hashed)
	KindCommand  = "command"  // one command's output
	KindValue    = "value"    // one InputValue
	KindDep      = "dep"      // one dependency's result
	KindGlobs    = "globs"    // the declared globs
)

// Fingerprints maps "kind:name" to a short digest of one input (or, for
// the module name, platform and version, the value itself). Environment
// values appear only as digests.
type Fingerprints map[string]string

// Hasher computes keys for one run. It remembers file digests and command
// outputs, so that inputs shared by many modules are hashed once per run.
// It is safe for concurrent use.
type Hasher struct {
	// Dir is the directory globs are relative to ("" is the working
	// directory).
	Dir string
	// Getenv reads environment variables (nil means os.Getenv).
	Getenv func(string) string
	// Secret, when set (the signing key), keys the digests of environment
	// values, so that a reader of the store cannot test guesses of a
	// low-entropy value against them.
	Secret []byte

	files sync.Map // full path -> [32]byte
	mu    sync.Mutex
	cmds  map[string]*cmdResult
}

type cmdResult struct {
	once sync.Once
	sum  string
	err  error
}

// Key returns the module's key (64 hex digits) and the fingerprints of
// its inputs.
func (h *Hasher) Key(ctx context.Context, s Spec) (string, Fingerprints, error) {
	fp := Fingerprints{
		KindModule + ":":   s.Module + "\x00" + s.Target,
		KindPlatform + ":": s.Platform,
		KindVersion + ":":  s.Version,
	}
	if len(s.Files) > 0 {
		globs := slices.Clone(s.Files)
		slices.Sort(globs)
		globs = slices.Compact(globs)
		fp[KindGlobs+":"] = strings.Join(globs, "\x00")
		dir := h.Dir
		if dir == "" {
			dir = "."
		}
		paths, err := expandGlobs(dir, globs)
		if err != nil {
			return "", nil, err
		}
		digests, err := hashFiles(ctx, dir, paths, &h.files)
		if err != nil {
			return "", nil, err
		}
		for _, d := range digests {
			fp[KindFile+":"+d.Path] = hex.EncodeToString(d.Digest[:])
		}
	}
	for _, name := range s.Env {
		v, set := h.lookupEnv(name)
		fp[KindEnv+":"+name] = h.envDigest(name, set, v)
	}
	for _, c := range s.Commands {
		sum, err := h.command(ctx, c)
		if err != nil {
			return "", nil, err
		}
		fp[KindCommand+":"+strings.Join(c, " ")] = sum
	}
	for _, v := range s.Values {
		fp[KindValue+":"+v.Name] = digestOf("value", v.Name, string(v.Data))
	}
	for _, d := range s.Deps {
		fp[KindDep+":"+d.Name] = digestOf("dep", d.Name, string(d.Data))
	}
	return fp.key(), fp, nil
}

func (h *Hasher) envDigest(name string, set bool, v string) string {
	if len(h.Secret) == 0 {
		return digestOf("env", name, fmt.Sprint(set), v)
	}
	k := blake3.Sum256(append([]byte("modpipe-cache-env/v1\n"), h.Secret...))
	m := blake3.New(32, k[:])
	fmt.Fprintf(m, "%d:%s%d:%s%d:%s", len(name), name, len(fmt.Sprint(set)), fmt.Sprint(set), len(v), v)
	return hex.EncodeToString(m.Sum(nil))
}

func (h *Hasher) lookupEnv(name string) (string, bool) {
	if h.Getenv != nil {
		v := h.Getenv(name)
		return v, v != ""
	}
	return os.LookupEnv(name)
}

// key hashes the fingerprints in sorted order, each field length-prefixed
// so that no two different sets hash alike.
func (fp Fingerprints) key() string {
	names := make([]string, 0, len(fp))
	for k := range fp {
		names = append(names, k)
	}
	slices.Sort(names)
	b := make([]byte, 0, 64*len(names)+32)
	b = append(b, "modpipe-cache-key/v1\n"...)
	for _, k := range names {
		b = appendPart(appendPart(b, k), fp[k])
	}
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendPart appends "<len>:<s>": parts so framed never run together.
func appendPart(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// digestOf hashes length-prefixed parts.
func digestOf(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 8
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = appendPart(b, p)
	}
	sum := blake3.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// command runs c once per Hasher and returns the digest of its exit code,
// stdout and stderr. A command that cannot be started is an error: a key
// without that input would be wrong.
func (h *Hasher) command(ctx context.Context, c []string) (string, error) {
	if len(c) == 0 || c[0] == "" {
		return "", fmt.Errorf("cache input command is empty; give a program name such as InputCommand(\"go\", \"version\")")
	}
	id := strings.Join(c, "\x00")
	h.mu.Lock()
	if h.cmds == nil {
		h.cmds = map[string]*cmdResult{}
	}
	r := h.cmds[id]
	if r == nil {
		r = &cmdResult{}
		h.cmds[id] = r
	}
	h.mu.Unlock()
	r.once.Do(func() {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, c[0], c[1:]...)
		cmd.Dir = h.Dir
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			r.err = fmt.Errorf("running cache input command %q: %w (install it, or remove the InputCommand)", strings.Join(c, " "), err)
			return
		}
		r.sum = digestOf("command", fmt.Sprint(code), out.String(), errb.String())
	})
	return r.sum, r.err
}
