package runtime

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// BrokerServeOptions say where and how a Broker listens.
type BrokerServeOptions struct {
	// Address is HOST:PORT (zero: ":8444").
	Address string
	// CertFile and KeyFile, when both set, serve HTTPS; empty: plain HTTP.
	// Released keys are wrapped to the guest's ephemeral key either way;
	// TLS hides which models are asked for and authenticates the broker.
	CertFile, KeyFile string
	// Listening, when set, is told the bound address (useful with port 0).
	Listening func(net.Addr)
}

// Server timeouts: a slow client cannot hold a connection open for long.
const (
	brokerReadHeaderTimeout = 10 * time.Second
	brokerReadTimeout       = 30 * time.Second
	brokerIdleTimeout       = 60 * time.Second
	brokerShutdownTimeout   = 10 * time.Second
)

// ListenAndServe serves b until ctx ends, then shuts down gracefully.
func (b *Broker) ListenAndServe(ctx context.Context, o BrokerServeOptions) error {
	if o.Address == "" {
		o.Address = ":8444"
	}
	ln, err := net.Listen("tcp", o.Address)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           b,
		ReadHeaderTimeout: brokerReadHeaderTimeout,
		ReadTimeout:       brokerReadTimeout,
		// A key request may re-walk a registry: the write deadline covers
		// the whole budget.
		WriteTimeout:   b.o.Timeout + 10*time.Second,
		IdleTimeout:    brokerIdleTimeout,
		MaxHeaderBytes: 16 << 10,
	}
	if o.Listening != nil {
		o.Listening(ln.Addr())
	}
	done := make(chan error, 1)
	go func() {
		if o.CertFile != "" && o.KeyFile != "" {
			done <- srv.ServeTLS(ln, o.CertFile, o.KeyFile)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), brokerShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if e := <-done; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
		return err
	}
}
