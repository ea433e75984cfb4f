package regtest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// StorageFrontOptions say how a StorageFront behaves.
type StorageFrontOptions struct {
	// Redirect answers blob GETs with a 307 to the object store, as ECR,
	// GHCR and S3-backed registries do; false passes them to the registry.
	Redirect bool
	// TLS serves the front and the object store over HTTPS with HTTP/2
	// offered, with a self-signed certificate for 127.0.0.1 and localhost
	// (StorageFront.CAFile).
	TLS bool
	// URLTTL is how long a pre-signed URL stays valid (0: one minute).
	URLTTL time.Duration
	// Username and Password are the object store's own credentials at the
	// registry, when it requires them.
	Username, Password string
}

// StoreRequest is one request the object store (or, for blob GETs, the
// front) received.
type StoreRequest struct {
	Proto, RemoteAddr, Range string
	// Authorization says the request carried an Authorization header.
	Authorization bool
	Status        int
}

// StorageFront stands in front of a registry like a cloud registry does:
// manifests and everything else are passed to the registry, and blob GETs
// (once the registry accepts the client's credentials) are redirected to a
// separate object store on another port, with pre-signed query parameters
// that expire. The object store wants no Authorization header (it refuses
// a request carrying one, as S3 does when a pre-signed URL also carries
// credentials) and serves byte ranges. For tests and benchmarks only.
type StorageFront struct {
	// Host is the front's host:port: the registry clients talk to.
	Host string
	// StoreAddr is the object store's listening host:port.
	StoreAddr string
	// CAFile is the certificate both serve, with TLS.
	CAFile string

	opts     StorageFrontOptions
	registry string
	key      []byte
	scheme   string

	up *http.Client

	mu          sync.Mutex
	storePublic string
	store       []StoreRequest
	front       []StoreRequest
	resolves    int
}

var blobGET = regexp.MustCompile(`^/v2/(.+)/blobs/([a-z0-9]+:[a-f0-9]+)$`)

// NewStorageFront starts a front and its object store before the registry
// at host (plain HTTP).
func NewStorageFront(t testing.TB, registryHost string, o StorageFrontOptions) *StorageFront {
	t.Helper()
	f := &StorageFront{opts: o, registry: registryHost, key: make([]byte, 32), scheme: "http",
		up: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(f.up.CloseIdleConnections)
	_, _ = rand.Read(f.key)
	if f.opts.URLTTL == 0 {
		f.opts.URLTTL = time.Minute
	}
	var cert tls.Certificate
	if o.TLS {
		f.scheme = "https"
		certPath, keyPath := SelfSignedCert(t, t.TempDir())
		var err error
		if cert, err = tls.LoadX509KeyPair(certPath, keyPath); err != nil {
			t.Fatal(err)
		}
		f.CAFile = certPath
	}
	start := func(h http.Handler) string {
		srv := httptest.NewUnstartedServer(h)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		if o.TLS {
			srv.EnableHTTP2 = true
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
			srv.StartTLS()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return srv.Listener.Addr().String()
	}
	f.StoreAddr = start(http.HandlerFunc(f.serveStore))
	_, port, _ := net.SplitHostPort(f.StoreAddr)
	// Another host name than the registry's, as a real object store has.
	f.storePublic = "localhost:" + port
	target, _ := url.Parse("http://" + registryHost)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.FlushInterval = -1
	f.Host = start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := blobGET.FindStringSubmatch(r.URL.Path)
		if m == nil || r.Method != http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			f.mu.Lock()
			f.front = append(f.front, StoreRequest{Proto: r.Proto, RemoteAddr: r.RemoteAddr, Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization") != "", Status: rec.status})
			f.mu.Unlock()
		}()
		if !o.Redirect {
			rp.ServeHTTP(rec, r)
			return
		}
		f.redirect(rec, r, m[1], m[2])
	}))
	return f
}

// SetStorePublic sets the host:port written into redirect URLs (a WAN
// proxy in front of the store, say). Its host should differ from the
// registry's, as a real object store's does.
func (f *StorageFront) SetStorePublic(hostport string) {
	f.mu.Lock()
	f.storePublic = hostport
	f.mu.Unlock()
}

// SetURLTTL changes how long the pre-signed URLs issued from now last.
func (f *StorageFront) SetURLTTL(d time.Duration) {
	f.mu.Lock()
	f.opts.URLTTL = d
	f.mu.Unlock()
}

// StoreRequests lists the object store's requests so far.
func (f *StorageFront) StoreRequests() []StoreRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]StoreRequest(nil), f.store...)
}

// FrontRequests lists the blob GETs the front received so far.
func (f *StorageFront) FrontRequests() []StoreRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]StoreRequest(nil), f.front...)
}

// Resolves is how many pre-signed URLs the front issued.
func (f *StorageFront) Resolves() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.resolves
}

// Reset forgets the recorded requests.
func (f *StorageFront) Reset() {
	f.mu.Lock()
	f.store, f.front, f.resolves = nil, nil, 0
	f.mu.Unlock()
}

func (f *StorageFront) sign(path string, expires int64) string {
	m := hmac.New(sha256.New, f.key)
	fmt.Fprintf(m, "%s\n%d", path, expires)
	return hex.EncodeToString(m.Sum(nil))
}

// redirect checks the client's credentials with the registry (a HEAD of
// the blob with its headers), then answers 307 with a pre-signed URL.
func (f *StorageFront) redirect(w http.ResponseWriter, r *http.Request, repo, dgst string) {
	head, _ := http.NewRequestWithContext(r.Context(), http.MethodHead, "http://"+f.registry+r.URL.Path, nil)
	head.Header = r.Header.Clone()
	head.Header.Del("Range")
	resp, err := f.up.Do(head)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		for _, h := range []string{"WWW-Authenticate", "Docker-Distribution-Api-Version", "Content-Type"} {
			if v := resp.Header.Get(h); v != "" {
				w.Header().Set(h, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		return
	}
	f.mu.Lock()
	public, ttl := f.storePublic, f.opts.URLTTL
	f.resolves++
	f.mu.Unlock()
	path := "/" + repo + "/" + dgst
	expires := time.Now().Add(ttl).UnixNano()
	q := url.Values{"X-Expires": {strconv.FormatInt(expires, 10)}, "X-Signature": {f.sign(path, expires)}}
	loc := url.URL{Scheme: f.scheme, Host: public, Path: path, RawQuery: q.Encode()}
	w.Header().Set("Location", loc.String())
	w.WriteHeader(http.StatusTemporaryRedirect)
}

// serveStore serves a blob at a pre-signed URL, ranges included.
func (f *StorageFront) serveStore(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		f.mu.Lock()
		f.store = append(f.store, StoreRequest{Proto: r.Proto, RemoteAddr: r.RemoteAddr, Range: r.Header.Get("Range"), Authorization: r.Header.Get("Authorization") != "", Status: rec.status})
		f.mu.Unlock()
	}()
	if r.Header.Get("Authorization") != "" {
		http.Error(rec, "only one auth mechanism allowed: a pre-signed URL and an Authorization header", http.StatusBadRequest)
		return
	}
	expires, err := strconv.ParseInt(r.URL.Query().Get("X-Expires"), 10, 64)
	if err != nil || !hmac.Equal([]byte(r.URL.Query().Get("X-Signature")), []byte(f.sign(r.URL.Path, expires))) {
		http.Error(rec, "signature does not match", http.StatusForbidden)
		return
	}
	if time.Now().UnixNano() > expires {
		http.Error(rec, "request has expired", http.StatusForbidden)
		return
	}
	i := strings.LastIndexByte(r.URL.Path, '/')
	up, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+f.registry+"/v2"+r.URL.Path[:i]+"/blobs"+r.URL.Path[i:], nil)
	if v := r.Header.Get("Range"); v != "" {
		up.Header.Set("Range", v)
	}
	if f.opts.Username != "" {
		up.SetBasicAuth(f.opts.Username, f.opts.Password)
	}
	resp, err := f.up.Do(up)
	if err != nil {
		http.Error(rec, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Length", "Content-Range", "Content-Type", "Accept-Ranges", "ETag"} {
		if v := resp.Header.Get(h); v != "" {
			rec.Header().Set(h, v)
		}
	}
	rec.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(rec, resp.Body)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
