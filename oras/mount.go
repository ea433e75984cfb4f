package oras

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// maxMountTries bounds the repositories asked for one blob: each refused
// mount costs a round trip (and opens an upload session the registry
// discards later).
const maxMountTries = 2

// errMountRefused is what the mount's content callback answers when the
// registry starts an upload session (202) instead of mounting: the blob is
// then uploaded the usual way, chunked for a big file, instead of in the
// single request oras-go would send on that session.
var errMountRefused = errors.New("mount refused")

// mountBlob asks the registry to mount blob d (size bytes) into repo from
// one of the repositories in from, in turn. It returns the repository the
// blob was mounted from, or "" when none was: a 202 (the registry does
// not mount, or not this blob: ECR mounts only blobs a manifest refers to,
// Harbor only blobs linked in the source repository), a 401/403 (no pull
// right on the source) or a 404 all mean "upload it". Only the registry's
// 201 for this digest counts: oras-go checks the Docker-Content-Digest of
// the answer, and the manifest push fails if the registry lied.
//
// The scopes asked for are push and pull on repo and pull on the source,
// as the distribution spec requires for a mount (oras-go adds them to the
// token request).
func mountBlob(ctx context.Context, repo *remote.Repository, d digest.Digest, size int64, from []string) string {
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: size}
	refused := func() (io.ReadCloser, error) { return nil, errMountRefused }
	for i, src := range from {
		if i == maxMountTries || ctx.Err() != nil {
			break
		}
		if err := repo.Mount(ctx, desc, src, refused); err == nil {
			return src
		}
	}
	return ""
}
