// Package ident makes and normalises the identifiers several modpipe
// packages share: random hex ids (sessions, claim tokens, upload ids) and
// lower-case capability names.
package ident

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Random returns n random bytes from crypto/rand, hex-encoded (2n
// characters). crypto/rand.Read does not fail (it crashes the program if
// the system's source of randomness fails).
func Random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Lower returns a copy of names, each in lower case (capabilities are
// compared in lower case).
func Lower(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(n)
	}
	return out
}
