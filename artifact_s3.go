//go:build !modpipe_nos3

package modpipe

import (
	"github.com/modpipe/modpipe/artifact"
	"github.com/modpipe/modpipe/artifact/s3"
)

// openS3Store opens an s3:// --artifact-store URL. Building with the tag
// modpipe_nos3 leaves the S3 client out of the program (about 6.7 MB).
func openS3Store(raw string) (artifact.Store, error) { return s3.OpenURL(raw) }
