package oras

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// A blob at least parallelMin bytes big is fetched as parallelParts byte
// ranges at once. Writing a file costs the kernel more CPU than sending it,
// so one stream keeps one core busy while the other idles; ranges use both.
// parallelMin is a variable only so that tests can use small blobs.
var parallelMin int64 = 64 << 20

const parallelParts = 4

// errNoRanges says the registry ignored a Range header: fetch in one stream.
var errNoRanges = errors.New("registry does not serve byte ranges")

// fetchRanges downloads desc from src into f in parallel byte ranges while
// one goroutine hashes the file in order, right behind the writers. It
// returns ErrIntegrity-wrapped errors for bytes that do not match desc.
func fetchRanges(ctx context.Context, src RangeFetcher, desc ocispec.Descriptor, f *os.File, t Tracker) error {
	if desc.Digest.Algorithm() != digest.SHA256 {
		return errNoRanges
	}
	size := desc.Size
	part := (size + parallelParts - 1) / parallelParts
	type span struct {
		off, end int64 // [off, end)
		written  int64
	}
	spans := make([]*span, 0, parallelParts)
	for off := int64(0); off < size; off += part {
		spans = append(spans, &span{off: off, end: min(off+part, size)})
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	var failed error
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
		cond.Broadcast()
	}

	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, func() { fail(gctx.Err()) })
	defer stop()
	for _, s := range spans {
		g.Go(func() error {
			body, err := src.FetchRange(gctx, desc, s.off, s.end-1)
			if err != nil {
				fail(err)
				return err
			}
			defer body.Close()
			buf := make([]byte, 1<<20)
			pos := s.off
			for pos < s.end {
				n, rerr := body.Read(buf[:min(int64(len(buf)), s.end-pos)])
				if n > 0 {
					if _, err := f.WriteAt(buf[:n], pos); err != nil {
						fail(err)
						return err
					}
					pos += int64(n)
					t.Add(int64(n))
					mu.Lock()
					s.written = pos - s.off
					mu.Unlock()
					cond.Broadcast()
				}
				if rerr == io.EOF {
					break
				}
				if rerr != nil {
					fail(rerr)
					return rerr
				}
			}
			if pos != s.end {
				err := fmt.Errorf("%w: range %d-%d ended at %d", io.ErrUnexpectedEOF, s.off, s.end-1, pos)
				fail(err)
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		h := sha256.New()
		buf := make([]byte, 1<<20)
		for _, s := range spans {
			for hashed := int64(0); hashed < s.end-s.off; {
				mu.Lock()
				for s.written == hashed && failed == nil {
					cond.Wait()
				}
				avail, err := s.written, failed
				mu.Unlock()
				if err != nil {
					return err
				}
				for hashed < avail {
					n, err := f.ReadAt(buf[:min(int64(len(buf)), avail-hashed)], s.off+hashed)
					h.Write(buf[:n])
					hashed += int64(n)
					if err != nil && err != io.EOF {
						fail(err)
						return err
					}
				}
			}
		}
		got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
		if got != desc.Digest {
			return fmt.Errorf("%w: got %s", errMismatch, got)
		}
		return nil
	})
	return g.Wait()
}

var (
	errMismatch = errors.New("digest mismatch")
	errSize     = errors.New("size mismatch")
)

// getRange GETs bytes [from, to] of the blob and checks the registry
// answered with exactly that range.
func getRange(ctx context.Context, repo *remote.Repository, desc ocispec.Descriptor, from, to int64) (io.ReadCloser, error) {
	ref := repo.Reference
	ctx = auth.AppendRepositoryScope(ctx, ref, auth.ActionPull)
	scheme := "https"
	if repo.PlainHTTP {
		scheme = "http"
	}
	u := url.URL{Scheme: scheme, Host: ref.Host(), Path: "/v2/" + ref.Repository + "/blobs/" + desc.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
	client := repo.Client
	if client == nil {
		client = auth.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		want := fmt.Sprintf("bytes %d-%d/", from, to)
		if cr := resp.Header.Get("Content-Range"); len(cr) < len(want) || cr[:len(want)] != want {
			resp.Body.Close()
			return nil, fmt.Errorf("registry answered range %d-%d with Content-Range %q", from, to, cr)
		}
		return resp.Body, nil
	case http.StatusOK:
		resp.Body.Close()
		return nil, errNoRanges
	}
	defer resp.Body.Close()
	_, err = doExpectResp(resp, req)
	return nil, err
}
