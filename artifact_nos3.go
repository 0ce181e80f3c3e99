//go:build modpipe_nos3

package modpipe

import (
	"errors"

	"github.com/modpipe/modpipe/artifact"
)

// openS3Store refuses s3:// URLs: this program was built with the tag
// modpipe_nos3, which leaves the S3 client out.
func openS3Store(string) (artifact.Store, error) {
	return nil, errors.New("this program was built with the tag modpipe_nos3, without the S3 client; build it without that tag, or pass the store in code with p.UseArtifactStore(s3.NewStore(...))")
}
