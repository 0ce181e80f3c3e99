// Package transfer moves artifacts between the local file system and an
// artifact.Store: it builds and validates manifests, uploads files
// content-addressed (skipping blobs the store already has), and downloads
// them verified, through a per-instance cache, into a target directory
// that nothing in a manifest can escape.
package transfer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
)

// Version marks an artifact's JSON form: the field "modpipe_artifact"
// holds it, which is how artifacts are found inside result values.
const Version = "v1"

// Limits on what a manifest may hold; a manifest is untrusted input.
const (
	MaxFiles   = 100_000 // files plus directories
	MaxPathLen = 1024    // bytes of one slash-separated path
	MaxNameLen = 128     // bytes of an artifact name
)

// Manifest describes an artifact: its name and the files it holds. Its JSON
// form is the wire form of modpipe.Artifact.
type Manifest struct {
	Version string `json:"modpipe_artifact"`
	Name    string `json:"name"`
	// Digest is the SHA-256 of the manifest blob stored next to the files
	// (the manifest's JSON without Digest and Origin).
	Digest string `json:"digest,omitempty"`
	// Origin is set when the artifact lives in a store that only the
	// instance that uploaded it can read: that store's id.
	Origin string `json:"origin,omitempty"`
	Files  []File `json:"files"`
	// Dirs lists the empty directories.
	Dirs []string `json:"dirs,omitempty"`
}

// File is one file of an artifact.
type File struct {
	// Path is slash-separated and relative to the artifact's root.
	Path string `json:"path"`
	Size int64  `json:"size"`
	// Mode holds the permission bits (0o644, 0o755).
	Mode uint32 `json:"mode"`
	// SHA256 is the lowercase hex digest of the content.
	SHA256 string `json:"sha256"`
}

// Bytes returns the total size of the artifact's files.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// ValidName checks an artifact name: it becomes a directory name
// (--artifacts-out DIR/<name>), so it is one portable path segment.
func ValidName(name string) error {
	if name == "" {
		return errors.New("artifact name is empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("artifact name %q is %d bytes long (at most %d)", trim(name), len(name), MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("artifact name %q is not allowed", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("artifact name %q has the character %q; use letters, digits, '.', '_' and '-'", trim(name), c)
		}
	}
	return nil
}

// ValidPath checks a path of a manifest: relative, slash-separated,
// without "..", "." or empty segments, drive letters, backslashes, colons
// or control characters, and local on this system (filepath.IsLocal, which
// on Windows also refuses reserved names such as NUL).
func ValidPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("path %q %s", trim(p), why) }
	switch {
	case p == "":
		return bad("is empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("is %d bytes long (at most %d)", len(p), MaxPathLen))
	case strings.HasPrefix(p, "/"):
		return bad("is absolute")
	case len(p) >= 2 && p[1] == ':':
		return bad("starts with a drive letter")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			return bad("has a backslash (manifest paths are slash-separated)")
		case c == ':':
			return bad("has a colon")
		case c < 0x20 || c == 0x7f:
			return bad("has a control character")
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return bad("has an empty segment")
		case ".", "..":
			return bad("has a " + seg + " segment")
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return bad("is not a local path on this system")
	}
	return nil
}

// Validate checks a manifest completely before anything is written: name,
// paths, digests, sizes, modes, and that no path is listed twice or is
// both a file and a directory (a file "a" and a file "a/b", say).
func (m *Manifest) Validate() error {
	if m.Version != Version {
		return fmt.Errorf("not a modpipe artifact of version %s (modpipe_artifact is %q)", Version, trim(m.Version))
	}
	if err := ValidName(m.Name); err != nil {
		return err
	}
	if n := len(m.Files) + len(m.Dirs); n > MaxFiles {
		return fmt.Errorf("artifact %s lists %d files and directories (at most %d)", m.Name, n, MaxFiles)
	}
	if m.Digest != "" {
		if err := validDigest(m.Digest); err != nil {
			return fmt.Errorf("artifact %s: manifest %w", m.Name, err)
		}
	}
	files := make(map[string]bool, len(m.Files))
	parents := map[string]bool{}
	for _, f := range m.Files {
		if err := ValidPath(f.Path); err != nil {
			return fmt.Errorf("artifact %s: %w", m.Name, err)
		}
		if err := validDigest(f.SHA256); err != nil {
			return fmt.Errorf("artifact %s: file %s: %w", m.Name, f.Path, err)
		}
		if f.Size < 0 {
			return fmt.Errorf("artifact %s: file %s has a negative size", m.Name, f.Path)
		}
		if f.Mode&^0o777 != 0 {
			return fmt.Errorf("artifact %s: file %s has mode %#o (only permission bits 0777 are allowed)", m.Name, f.Path, f.Mode)
		}
		key := foldPath(f.Path)
		if files[key] {
			return fmt.Errorf("artifact %s: file %s is listed twice (paths may differ only in case on some systems)", m.Name, f.Path)
		}
		files[key] = true
		for d := path.Dir(key); d != "."; d = path.Dir(d) {
			parents[d] = true
		}
	}
	dirs := make(map[string]bool, len(m.Dirs))
	for _, d := range m.Dirs {
		if err := ValidPath(d); err != nil {
			return fmt.Errorf("artifact %s: directory %w", m.Name, err)
		}
		key := foldPath(d)
		if dirs[key] || files[key] {
			return fmt.Errorf("artifact %s: directory %s is listed twice or is also a file", m.Name, d)
		}
		dirs[key] = true
		for p := path.Dir(key); p != "."; p = path.Dir(p) {
			parents[p] = true
		}
	}
	for p := range parents {
		if files[p] {
			return fmt.Errorf("artifact %s: %s is a file and also a directory holding other paths", m.Name, p)
		}
	}
	return nil
}

// foldPath compares paths as case-insensitive file systems do (ASCII only:
// enough to stop two names landing on one file on Windows and macOS).
func foldPath(p string) string { return strings.ToLower(p) }

func validDigest(d string) error {
	if len(d) != 64 {
		return fmt.Errorf("digest %q is not 64 hex digits", trim(d))
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("digest %q is not lowercase hex", trim(d))
		}
	}
	return nil
}

// Decode reads and validates a manifest's JSON form. Unknown fields are
// refused, and so is anything after the object.
func Decode(r io.Reader) (*Manifest, error) {
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding an artifact manifest: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding an artifact manifest: data after the manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func trim(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
