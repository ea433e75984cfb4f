package admission

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// ServeOptions say where and with which certificate the webhook listens.
type ServeOptions struct {
	// Address is HOST:PORT (default ":8443").
	Address string
	// CertFile and KeyFile are the serving certificate and key (PEM). They
	// are re-read when either file changes (a rotated Secret), checked at
	// most every CertCheck (0: 2 s); a pair that does not load keeps the
	// old one.
	CertFile, KeyFile string
	CertCheck         time.Duration
	// Listening, when set, is called with the bound address.
	Listening func(addr net.Addr)
}

// ListenAndServeTLS serves Handler over TLS until ctx ends, and reloads
// the policy (Run) meanwhile.
func (w *Webhook) ListenAndServeTLS(ctx context.Context, o ServeOptions) error {
	if o.Address == "" {
		o.Address = ":8443"
	}
	kp, err := newKeyPairReloader(o.CertFile, o.KeyFile, o.CertCheck, w)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return err
	}
	if o.Listening != nil {
		o.Listening(ln.Addr())
	}
	srv := &http.Server{
		Handler:           w.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.get},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.Run(ctx)
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = srv.Shutdown(sctx)
	}()
	w.log.Info("serving", "address", ln.Addr().String(), "policy", w.policy.Load().raw)
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// keyPairReloader hands out the current serving certificate and re-reads
// it when its files change.
type keyPairReloader struct {
	certFile, keyFile string
	every             time.Duration
	w                 *Webhook

	mu      sync.Mutex
	cert    *tls.Certificate
	raw     []byte
	checked time.Time
}

func newKeyPairReloader(certFile, keyFile string, every time.Duration, w *Webhook) (*keyPairReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("admission: a TLS certificate and key are required (the API server calls webhooks over HTTPS only)")
	}
	if every <= 0 {
		every = 2 * time.Second
	}
	k := &keyPairReloader{certFile: certFile, keyFile: keyFile, every: every, w: w}
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *keyPairReloader) load() error {
	c, err := os.ReadFile(k.certFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	key, err := os.ReadFile(k.keyFile)
	if err != nil {
		return fmt.Errorf("tls key: %w", err)
	}
	raw := append(append([]byte{}, c...), key...)
	if k.cert != nil && bytes.Equal(raw, k.raw) {
		return nil
	}
	pair, err := tls.X509KeyPair(c, key)
	if err != nil {
		return fmt.Errorf("tls certificate %s and key %s: %w", k.certFile, k.keyFile, err)
	}
	if k.cert != nil {
		k.w.log.Info("serving certificate reloaded", "file", k.certFile)
	}
	k.cert, k.raw = &pair, raw
	return nil
}

func (k *keyPairReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if time.Since(k.checked) >= k.every {
		k.checked = time.Now()
		if err := k.load(); err != nil {
			k.w.log.Error("serving certificate not reloaded: keeping the one before", "error", err)
		}
	}
	return k.cert, nil
}
