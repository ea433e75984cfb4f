package oras_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/oras"
)

// TestAuthErrorsAndHints: a registry's refusal becomes an *AuthError that
// names registry and repository and says whether any credentials were
// used, and Hint gives the next step for it and for the other errors a
// newcomer meets first.
func TestAuthErrorsAndHints(t *testing.T) {
	basic := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "right" {
			w.WriteHeader(http.StatusForbidden) // alice may not read this repository
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	}))
	defer basic.Close()
	host := strings.TrimPrefix(basic.URL, "http://")
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no stored credentials

	tests := []struct {
		name      string
		opts      oras.RemoteOptions
		ref       string
		status    int
		anonymous bool
		hint      string
		notAuth   bool
	}{
		{name: "no credentials", opts: oras.RemoteOptions{PlainHTTP: true}, ref: host + "/models/tiny:v1",
			anonymous: true, hint: "modelattest login " + host},
		{name: "wrong password", opts: oras.RemoteOptions{PlainHTTP: true, Username: "alice", Password: "wrong"}, ref: host + "/models/tiny:v1",
			status: http.StatusUnauthorized, hint: "check the user name and password for " + host},
		{name: "not allowed", opts: oras.RemoteOptions{PlainHTTP: true, Username: "alice", Password: "right"}, ref: host + "/models/tiny:v1",
			status: http.StatusForbidden, hint: "may not access models/tiny"},
		{name: "HTTPS to plain HTTP", opts: oras.RemoteOptions{}, ref: host + "/models/tiny:v1",
			notAuth: true, hint: "--plain-http"},
		{name: "missing registry config", opts: oras.RemoteOptions{PlainHTTP: true, RegistryConfig: filepath.Join(t.TempDir(), "nope.json")},
			ref: host + "/models/tiny:v1", notAuth: true, hint: "--registry-config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tgt, err := oras.OpenRemote(context.Background(), tt.ref, tt.opts)
			if err == nil {
				_, err = oras.Resolve(context.Background(), tgt, tgt.Reference)
			}
			if err == nil {
				t.Fatal("no error")
			}
			var ae *oras.AuthError
			if tt.notAuth != !errors.As(err, &ae) {
				t.Fatalf("err = %v (AuthError: %v)", err, ae != nil)
			}
			if ae != nil && (ae.Registry != host || ae.Repository != "models/tiny" || ae.Anonymous != tt.anonymous || ae.StatusCode != tt.status) {
				t.Fatalf("AuthError %+v", ae)
			}
			if h := oras.Hint(err); !strings.Contains(h, tt.hint) {
				t.Fatalf("Hint(%v) = %q, want it to contain %q", err, h, tt.hint)
			}
		})
	}
}
