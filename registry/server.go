package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/auth"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // basic auth
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/semaphore"
)

// Config is how a registry is run. RootDir is required.
type Config struct {
	// Addr is the HOST:PORT to listen on; ":0" or "127.0.0.1:0" picks a port.
	Addr string
	// RootDir holds everything the registry stores.
	RootDir string
	// HtpasswdFile, when set, requires basic auth from the users in it
	// (bcrypt entries, as `htpasswd -B` writes).
	HtpasswdFile string
	// TLSCert and TLSKey, when both set, serve HTTPS.
	TLSCert, TLSKey string
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// MaxManifestBytes bounds a pushed manifest (0: 4 MiB).
	MaxManifestBytes int64
	// MaxBufferedBytes bounds the manifest bodies held in memory at once,
	// across all clients (0: 16 MiB). A push past it is answered 429 with
	// Retry-After, as a busy registry does.
	MaxBufferedBytes int64
	// CatalogMaxEntries bounds one page of GET /v2/_catalog (0: 1000, as
	// the distribution registry's configuration file defaults it).
	CatalogMaxEntries int
}

// Server is a running registry.
type Server struct {
	cfg     Config
	app     *handlers.App
	ns      distribution.Namespace
	index   *referrerIndex
	access  auth.AccessController
	srv     *http.Server
	ln      net.Listener
	log     *slog.Logger
	errc    chan error
	handler http.Handler

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed when Close starts: stops the ctx watcher of Start
	shut      chan struct{} // closed when Close is done: Wait returns after it
	// bodies counts the bytes of manifest bodies being buffered.
	bodies *semaphore.Weighted
}

// New builds a registry on cfg.RootDir without listening; Handler serves it.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.RootDir == "" {
		return nil, fmt.Errorf("registry: no root directory")
	}
	root, err := filepath.Abs(cfg.RootDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("registry root: %w", err)
	}
	if cfg.MaxManifestBytes <= 0 {
		cfg.MaxManifestBytes = 4 << 20
	}
	if cfg.MaxBufferedBytes <= 0 {
		cfg.MaxBufferedBytes = 16 << 20
	}
	if cfg.MaxBufferedBytes < cfg.MaxManifestBytes {
		cfg.MaxBufferedBytes = cfg.MaxManifestBytes
	}
	if cfg.CatalogMaxEntries <= 0 {
		cfg.CatalogMaxEntries = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// distribution logs through logrus; its logs go to log, never through
	// logrus's standard logger, which belongs to the program.
	ctx = loggerContext{ctx, distributionLogger(log)}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	dc := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem":  configuration.Parameters{"rootdirectory": root},
			"delete":      configuration.Parameters{"enabled": true},
			"maintenance": configuration.Parameters{"uploadpurging": map[any]any{"enabled": false}},
		},
	}
	dc.HTTP.Secret = hex.EncodeToString(secret)
	// Built in code, the configuration misses the YAML loader's default:
	// with 0 the catalog lists nothing and refuses every page size.
	dc.Catalog.MaxEntries = cfg.CatalogMaxEntries
	dc.Log.Level = "warn"
	dc.Log.AccessLog.Disabled = true
	var access auth.AccessController
	if cfg.HtpasswdFile != "" {
		if _, err := os.Stat(cfg.HtpasswdFile); err != nil {
			return nil, fmt.Errorf("htpasswd: %w", err)
		}
		params := map[string]any{"realm": "modelattest", "path": cfg.HtpasswdFile}
		dc.Auth = configuration.Auth{"htpasswd": configuration.Parameters(params)}
		if access, err = auth.GetAccessController("htpasswd", params); err != nil {
			return nil, fmt.Errorf("htpasswd: %w", err)
		}
	}
	app := handlers.NewApp(ctx, dc)

	drv, err := filesystem.FromParameters(map[string]any{"rootdirectory": root})
	if err != nil {
		return nil, err
	}
	ns, err := storage.NewRegistry(ctx, drv, storage.EnableDelete)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, app: app, ns: ns, access: access, log: log, bodies: semaphore.NewWeighted(cfg.MaxBufferedBytes),
		index: newReferrerIndex(filepath.Join(root, "modelattest", "referrers"))}
	if s.index.complete() {
		if err := s.index.load(); err != nil {
			return nil, err
		}
	} else if err := s.rebuild(ctx); err != nil {
		return nil, fmt.Errorf("rebuild referrers index: %w", err)
	}
	// Until a clean shutdown writes it back, the index may lag storage.
	if err := s.index.setComplete(false); err != nil {
		return nil, err
	}
	s.handler = s.route()
	return s, nil
}

// rebuild recreates the referrers index from every manifest in storage.
func (s *Server) rebuild(ctx context.Context) error {
	start := time.Now()
	if err := os.RemoveAll(s.index.dir); err != nil {
		return err
	}
	s.index = newReferrerIndex(s.index.dir)
	enum, ok := s.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return fmt.Errorf("storage cannot enumerate repositories")
	}
	n := 0
	err := enum.Enumerate(ctx, func(name string) error {
		named, err := reference.WithName(name)
		if err != nil {
			return nil
		}
		repo, err := s.ns.Repository(ctx, named)
		if err != nil {
			return err
		}
		ms, err := repo.Manifests(ctx)
		if err != nil {
			return err
		}
		me, ok := ms.(distribution.ManifestEnumerator)
		if !ok {
			return nil
		}
		return me.Enumerate(ctx, func(d digest.Digest) error {
			m, err := ms.Get(ctx, d)
			if err != nil {
				return nil // a manifest whose blobs are gone is not a referrer
			}
			mt, body, err := m.Payload()
			if err != nil {
				return nil
			}
			if subject, desc, ok := referrerDescriptor(mt, body); ok {
				n++
				return s.index.add(name, subject, desc)
			}
			return nil
		})
	})
	if err != nil && !isPathNotFound(err) {
		return err
	}
	s.log.Info("referrers index rebuilt", "referrers", n, "took", time.Since(start).String())
	return nil
}

// isPathNotFound reports a storage path that does not exist yet (an empty
// registry has no repositories folder).
func isPathNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// Handler serves the registry API, /healthz included.
func (s *Server) Handler() http.Handler { return s.handler }

var (
	referrersPath = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)
	manifestPath  = regexp.MustCompile(`^/v2/(.+)/manifests/([^/]+)$`)
)

func (s *Server) route() http.Handler {
	dlog := distributionLogger(s.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(loggerContext{r.Context(), dlog})
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", time.Since(start).String())
		}()
		switch {
		case r.URL.Path == "/healthz":
			sw.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(sw, "ok\n")
		case referrersPath.MatchString(r.URL.Path):
			m := referrersPath.FindStringSubmatch(r.URL.Path)
			s.serveReferrers(sw, r, m[1], m[2])
		case r.Method == http.MethodPut && manifestPath.MatchString(r.URL.Path):
			m := manifestPath.FindStringSubmatch(r.URL.Path)
			s.putManifest(sw, r, m[1], m[2])
		case r.Method == http.MethodDelete && manifestPath.MatchString(r.URL.Path):
			m := manifestPath.FindStringSubmatch(r.URL.Path)
			s.app.ServeHTTP(sw, r)
			if d, err := digest.Parse(m[2]); err == nil && sw.status == http.StatusAccepted {
				if err := s.index.remove(m[1], d); err != nil {
					s.log.Error("referrers index", "repository", m[1], "digest", d.String(), "error", err.Error())
				}
			}
		default:
			s.app.ServeHTTP(sw, r)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	beforeWrite func(status int)
}

func (w *statusWriter) WriteHeader(status int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	w.status = status
	if w.beforeWrite != nil {
		w.beforeWrite(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streamed blob reads through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// putManifest hands a manifest push to distribution and, when it accepts a
// manifest with a subject, records the referrer before the client hears
// back, and answers with the OCI-Subject header.
func (s *Server) putManifest(w *statusWriter, r *http.Request, repo, ref string) {
	// Credentials first: an anonymous client must not make the registry
	// read, let alone hold, a body (distribution checks them again).
	if !s.authorized(w, r, repo, "pull", "push") {
		return
	}
	limit := s.cfg.MaxManifestBytes
	// A push refused before its body is read closes the connection: else
	// net/http, to reuse the connection, first reads and discards up to
	// 256 KiB of the unread body before it sends the answer, so a client
	// that stalls mid-body would not hear the refusal until the read gives up.
	refuse := func() { w.Header().Set("Connection", "close") }
	if r.ContentLength > limit {
		refuse()
		_ = errcode.ServeJSON(w, errcode.ErrorCodeManifestInvalid.WithMessage("manifest too big").WithDetail(
			fmt.Sprintf("a manifest may be at most %d bytes", limit)))
		return
	}
	// Reserve what the body may take of the bytes held across all clients.
	reserve := limit + 1
	if r.ContentLength >= 0 {
		reserve = r.ContentLength + 1
	}
	if !s.bodies.TryAcquire(reserve) {
		refuse()
		w.Header().Set("Retry-After", "1")
		_ = errcode.ServeJSON(w, errcode.ErrorCodeTooManyRequests.WithDetail(
			fmt.Sprintf("more than %d bytes of manifests are being received; retry", s.cfg.MaxBufferedBytes)))
		return
	}
	defer s.bodies.Release(reserve)
	// A client that stalls mid-body must not hold its share for ever.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(manifestReadTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, reserve))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if int64(len(body)) > limit {
		_ = errcode.ServeJSON(w, errcode.ErrorCodeManifestInvalid.WithMessage("manifest too big").WithDetail(
			fmt.Sprintf("a manifest may be at most %d bytes", limit)))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	subject, desc, isReferrer := referrerDescriptor(r.Header.Get("Content-Type"), body)
	if isReferrer {
		if d, err := digest.Parse(ref); err == nil && d.Algorithm().Available() {
			desc.Digest = d.Algorithm().FromBytes(body)
		}
		w.beforeWrite = func(status int) {
			if status != http.StatusCreated {
				return
			}
			if err := s.index.add(repo, subject, desc); err != nil {
				s.log.Error("referrers index", "repository", repo, "digest", desc.Digest.String(), "error", err.Error())
				return
			}
			w.Header().Set("OCI-Subject", subject.String())
		}
	}
	s.app.ServeHTTP(w, r)
}

// serveReferrers answers GET /v2/<name>/referrers/<digest>.
func (s *Server) serveReferrers(w http.ResponseWriter, r *http.Request, repo, ref string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnsupported)
		return
	}
	if !repoNameRE.MatchString(repo) {
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnknown.WithMessage("invalid repository name"))
		return
	}
	if !s.authorized(w, r, repo, "pull") {
		return
	}
	d, err := digest.Parse(ref)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "DIGEST_INVALID", "message": "invalid digest " + ref}}})
		return
	}
	at := r.URL.Query().Get("artifactType")
	idx := s.index.index(repo, d, at)
	b, err := json.Marshal(idx)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

// manifestReadTimeout bounds how long a manifest body may take to arrive.
const manifestReadTimeout = 30 * time.Second

// authorized checks the request's credentials for actions on repo and,
// when they fall short, answers with the challenge and reports false.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request, repo string, actions ...string) bool {
	if s.access == nil {
		return true
	}
	var access []auth.Access
	for _, a := range actions {
		access = append(access, auth.Access{Resource: auth.Resource{Type: "repository", Name: repo}, Action: a})
	}
	if _, err := s.access.Authorized(r, access...); err != nil {
		var ch auth.Challenge
		if errors.As(err, &ch) {
			ch.SetHeaders(r, w)
			_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized)
			return false
		}
		w.WriteHeader(http.StatusBadRequest)
		return false
	}
	return true
}

// Start listens on cfg.Addr and serves until Close is called or ctx ends;
// when ctx ends the server shuts down as Close does (in-flight requests get
// up to ShutdownTimeout to finish) and Wait returns.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	s, err := New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:5000"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)} // TLS handshake noise is not an error of ours
	s.errc = make(chan error, 1)
	s.closed = make(chan struct{})
	s.shut = make(chan struct{})
	go func() {
		var err error
		if cfg.TLSCert != "" && cfg.TLSKey != "" {
			err = s.srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			// Close stopped the server: Wait returns once it has finished
			// (requests drained, referrers index saved).
			<-s.shut
			err = nil
		}
		s.errc <- err
	}()
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
			defer cancel()
			if err := s.Close(sctx); err != nil {
				s.log.Error("registry shutdown", "error", err.Error())
			}
		case <-s.closed:
		}
	}()
	s.log.Info("registry listening", "address", ln.Addr().String(), "root", cfg.RootDir, "tls", cfg.TLSCert != "", "auth", cfg.HtpasswdFile != "")
	return s, nil
}

// Addr is the address the registry listens on (HOST:PORT).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Wait blocks until the server stops serving and, when Close or the end of
// Start's context stopped it, until that shutdown is done.
func (s *Server) Wait() error { return <-s.errc }

// ShutdownTimeout bounds how long in-flight requests may run once the
// context given to Start has ended.
const ShutdownTimeout = 10 * time.Second

// Close shuts the server down gracefully: in-flight requests finish, then
// the referrers index is marked complete so the next start trusts it.
// Calling it again returns the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if s.closed != nil {
			close(s.closed)
		}
		if s.srv != nil {
			s.closeErr = s.srv.Shutdown(ctx)
		}
		_ = s.app.Shutdown()
		if err := s.index.setComplete(true); s.closeErr == nil {
			s.closeErr = err
		}
		if s.shut != nil {
			close(s.shut)
		}
	})
	return s.closeErr
}
