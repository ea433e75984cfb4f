package registry_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/registry"
)

// TestManifestBodiesAreBounded: while one client holds the buffer for
// manifest bodies (a half-sent PUT), another is told 429 with Retry-After
// instead of the registry buffering without bound.
func TestManifestBodiesAreBounded(t *testing.T) {
	srv := newServer(t, registry.Config{MaxManifestBytes: 1024, MaxBufferedBytes: 1024})
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /v2/a/manifests/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1000\r\n\r\n{", host)
	second := []byte(`{"schemaVersion":2` + strings.Repeat(" ", 100) + `}`) // 1001 + 120 > 1024
	deadline := time.Now().Add(60 * time.Second)                            // generous: CI machines run this under heavy load
	for {
		resp := do(t, http.MethodPut, srv.URL+"/v2/b/manifests/v1", second, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second PUT: %s, want 429 while the first holds the buffer", resp.Status)
		}
		time.Sleep(20 * time.Millisecond) // the first request may not be in yet
	}
	c.Close()
	// Once the first is gone, pushes go through again (to the manifest check).
	deadline = time.Now().Add(10 * time.Second)
	for {
		resp := do(t, http.MethodPut, srv.URL+"/v2/b/manifests/v1", second, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode != http.StatusTooManyRequests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the buffer was never released")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
