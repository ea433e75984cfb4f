package oras

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// smallBlob is the size up to which a file is hashed first and sent in one
// monolithic PUT: two requests instead of three, and the second read comes
// from the page cache. Bigger files stream once, hashed on the way.
const smallBlob = 32 << 20

// uploader stores a model's files in one store, remembering digests
// (cache) and where blobs were seen (where).
type uploader struct {
	dst   content.Storage
	cache *digestCache
	where *blobLocations
	repo  *remote.Repository // the registry repository, nil for a local store
	at    blobAddress        // repo's registry host and repository
}

func newUploader(dst content.Storage, cacheDir string) *uploader {
	u := &uploader{dst: dst, cache: newDigestCache(cacheDir), where: openLocations(cacheDir)}
	u.repo, u.at, _ = remoteAddress(dst)
	return u
}

// upload stores the file at p (size bytes) and says how: skipped (the
// registry has the blob: asked with HEAD), mounted from another repository
// of the same registry (nothing sent), or uploaded. On a remote repository
// a big file is read once: it is hashed while it streams up in a chunked
// upload, and the digest is given only in the closing PUT. A digest the
// cache remembers for this very file (same inode, size and times) lets an
// existing blob be skipped, or mounted, without reading the file; a big
// file the cache does not know is hashed first only when a blob of its
// size was seen on this registry, so that it can be mounted.
func (u *uploader) upload(ctx context.Context, p string, size int64, t Tracker) (PushedBlob, error) {
	b, err := u.store(ctx, p, size, t)
	if err == nil && u.repo != nil {
		u.where.add(b.Digest, size, u.at)
	}
	return b, err
}

func (u *uploader) store(ctx context.Context, p string, size int64, t Tracker) (PushedBlob, error) {
	streamer, isRemote := streamerOf(u.dst)
	key := u.cache.key(p)
	d := u.cache.get(key)
	if d == "" && u.repo != nil && size > smallBlob && u.where.mayHold(u.at.Host, size) {
		var err error
		if d, err = hashFile(p, size); err != nil {
			return PushedBlob{}, err
		}
		u.cache.put(key, d)
	}
	if d != "" {
		if b, ok := u.reuse(ctx, d, size); ok {
			return b, nil
		}
	}
	if isRemote && size > smallBlob {
		d, err := streamer.streamBlob(ctx, p, size, t)
		if err == nil {
			u.cache.put(key, d)
		}
		return PushedBlob{Digest: d, Size: size, Status: BlobUploaded}, err
	}
	if d == "" {
		var err error
		if d, err = hashFile(p, size); err != nil {
			return PushedBlob{}, err
		}
		u.cache.put(key, d)
		if b, ok := u.reuse(ctx, d, size); ok {
			return b, nil
		}
	}
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: size}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		lastErr = pushFile(ctx, u.dst, desc, p, t)
		if lastErr == nil || !retryable(lastErr) || ctx.Err() != nil {
			break
		}
	}
	if isRemote && isTooLarge(lastErr) {
		// One request is too big for a proxy in front of the registry.
		if _, err := streamer.streamBlob(ctx, p, size, t); err != nil {
			return PushedBlob{}, err
		}
		return PushedBlob{Digest: d, Size: size, Status: BlobUploaded}, nil
	}
	if lastErr != nil {
		return PushedBlob{}, lastErr
	}
	return PushedBlob{Digest: d, Size: size, Status: BlobUploaded}, nil
}

// reuse finds blob d where it already is: in the store (HEAD), or in
// another repository of the same registry, mounted from there.
func (u *uploader) reuse(ctx context.Context, d digest.Digest, size int64) (PushedBlob, bool) {
	desc := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d, Size: size}
	if ok, err := u.dst.Exists(ctx, desc); err == nil && ok {
		return PushedBlob{Digest: d, Size: size, Status: BlobSkipped}, true
	}
	if u.repo == nil {
		return PushedBlob{}, false
	}
	if from := mountBlob(ctx, u.repo, d, size, u.where.sources(d, size, u.at)); from != "" {
		return PushedBlob{Digest: d, Size: size, Status: BlobMounted, MountedFrom: from}, true
	}
	return PushedBlob{}, false
}

// pushFile uploads the file in one request; a body cannot be replayed by
// the HTTP retry layer, so a failed attempt is retried here from the file.
func pushFile(ctx context.Context, dst content.Storage, desc ocispec.Descriptor, p string, t Tracker) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	cw := &countingWriter{t: t}
	r := io.TeeReader(io.LimitReader(f, desc.Size), cw)
	if err := dst.Push(ctx, desc, r); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Add(-cw.n.Load()) // the next attempt counts again
		return err
	}
	return nil
}

// retryable reports whether an upload error may go away on another try: a
// 5xx or 429 from the registry, or a broken connection.
func retryable(err error) bool {
	var ec *errcode.ErrorResponse
	if errors.As(err, &ec) {
		return ec.StatusCode >= 500 || ec.StatusCode == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

func hashFile(p string, size int64) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("%s: size changed while packing (%d, then %d bytes)", p, size, n)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))), nil
}

// streamUpload runs POST, one PATCH carrying the whole file, and PUT with
// the digest computed on the way. A failure restarts the upload from the
// first byte with a fresh hash, at most three times.
func streamUpload(ctx context.Context, repo *remote.Repository, p string, size int64, t Tracker) (digest.Digest, error) {
	var lastErr error
	chunks := chunkSizes
	for attempt := 0; attempt < 3; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		d, sent, err := streamUploadOnce(ctx, repo, p, size, chunks[0], t)
		if err == nil {
			return d, nil
		}
		t.Add(-sent)
		lastErr = err
		if isTooLarge(err) && len(chunks) > 1 {
			// A proxy in front of the registry caps request bodies (nginx's
			// client_max_body_size is 1 MiB by default): send smaller chunks.
			chunks = chunks[1:]
			continue
		}
		attempt++
		var ec *errcode.ErrorResponse
		if errors.As(err, &ec) && ec.StatusCode < 500 && ec.StatusCode != http.StatusTooManyRequests && ec.StatusCode != http.StatusUnauthorized {
			break // the registry refused this blob; asking again will not change its mind
		}
	}
	return "", fmt.Errorf("upload %s: %w", p, lastErr)
}

// chunkSizes are the PATCH sizes tried in turn: the whole blob, then
// smaller chunks when a proxy refuses a body as too large.
var chunkSizes = []int64{0, 4 << 20, 1 << 20, 256 << 10}

func isTooLarge(err error) bool {
	var ec *errcode.ErrorResponse
	return errors.As(err, &ec) && ec.StatusCode == http.StatusRequestEntityTooLarge
}

// sentBody is a request body that says when the transport is done with it:
// the transport closes a request body once, after its last read, whatever
// happened to the request.
type sentBody struct {
	io.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *sentBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
	t Tracker
}

func (hr *hashingReader) Read(b []byte) (int, error) {
	n, err := hr.r.Read(b)
	if n > 0 {
		hr.h.Write(b[:n])
		hr.n += int64(n)
		hr.t.Add(int64(n))
	}
	return n, err
}

func streamUploadOnce(ctx context.Context, repo *remote.Repository, p string, size, chunk int64, t Tracker) (digest.Digest, int64, error) {
	ctx = auth.AppendRepositoryScope(ctx, repo.Reference, auth.ActionPull, auth.ActionPush)
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	start := &url.URL{Scheme: scheme, Host: repo.Reference.Host(), Path: "/v2/" + repo.Reference.Repository + "/blobs/uploads/"}
	client := repo.Client
	if client == nil {
		client = auth.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, start.String(), nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := doExpect(client, req, http.StatusAccepted)
	if err != nil {
		return "", 0, err
	}
	loc, err := uploadLocation(resp, req.URL)
	if err != nil {
		return "", 0, err
	}
	authz := resp.Request.Header.Get("Authorization")

	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	hr := &hashingReader{r: io.LimitReader(f, size), h: sha256.New(), t: t}
	if chunk <= 0 {
		chunk = size
	}
	for off := int64(0); off < size; off += chunk {
		n := min(chunk, size-off)
		body := &sentBody{Reader: io.LimitReader(hr, n), closed: make(chan struct{})}
		req, err = http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), body)
		if err != nil {
			return "", hr.n, err
		}
		req.ContentLength = n
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, off+n-1))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err = doExpect(client, req, http.StatusAccepted, http.StatusNoContent)
		// The transport may still be sending the body when an early answer
		// (a 413, a 401) arrives; the hash and count are ours again only
		// once it has closed the body.
		<-body.closed
		if err != nil {
			return "", hr.n, err
		}
		if loc, err = uploadLocation(resp, req.URL); err != nil {
			return "", hr.n, err
		}
	}
	if hr.n != size {
		return "", hr.n, fmt.Errorf("%s: size changed while uploading (%d, then %d bytes)", p, size, hr.n)
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(hr.h.Sum(nil)))
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), http.NoBody)
	if err != nil {
		return "", hr.n, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	// No Authorization copied here: the closing PUT has no body, so the
	// auth client can answer a 401 (a token that expired during a long
	// upload, Harbor's last 30 minutes) with a fresh token and send it again,
	// instead of the whole upload starting over.
	if _, err = doExpect(client, req, http.StatusCreated); err != nil {
		return "", hr.n, err
	}
	return d, hr.n, nil
}

// uploadLocation resolves the Location of an upload session and refuses one
// on another host or scheme: credentials must not follow it elsewhere.
func uploadLocation(resp *http.Response, reqURL *url.URL) (*url.URL, error) {
	raw := resp.Header.Get("Location")
	if raw == "" {
		return nil, fmt.Errorf("registry gave no upload Location")
	}
	loc, err := reqURL.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("upload Location %q: %w", raw, err)
	}
	if loc.Hostname() != reqURL.Hostname() || effectivePort(loc) != effectivePort(reqURL) {
		return nil, fmt.Errorf("upload Location %q is on another host than %q", loc.Host, reqURL.Host)
	}
	if reqURL.Scheme == "https" && loc.Scheme != "https" {
		return nil, fmt.Errorf("upload Location %q downgrades from https", loc.Host)
	}
	return loc, nil
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// doExpect sends req and returns the response, its body drained and closed,
// when the status is one of want; otherwise the registry's error reply as an
// *errcode.ErrorResponse.
func doExpect(client remote.Client, req *http.Request, want ...int) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	for _, w := range want {
		if resp.StatusCode == w {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			return resp, nil
		}
	}
	return doExpectResp(resp, req)
}

// doExpectResp reads a registry error reply.
func doExpectResp(resp *http.Response, req *http.Request) (*http.Response, error) {
	e := &errcode.ErrorResponse{Method: req.Method, URL: req.URL, StatusCode: resp.StatusCode}
	var body struct {
		Errors errcode.Errors `json:"errors"`
	}
	if b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16)); len(b) > 0 && json.Unmarshal(b, &body) == nil {
		e.Errors = body.Errors
	}
	return nil, e
}
