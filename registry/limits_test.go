package registry_test

import (
	"bufio"
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
	// The first push sends its headers and one byte of a 1000-byte body,
	// then stalls, holding its 1001-byte reservation.
	first := func() net.Conn {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "PUT /v2/a/manifests/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 1000\r\n\r\n{", host)
		return c
	}
	c := first()
	defer func() { c.Close() }()
	// answered reports whether the server already answered the first push.
	// On a loaded machine its handler can run while one of the second
	// pushes below holds its 121 bytes; then it is the first that is
	// refused with 429 (at once: a refused push closes its connection
	// rather than wait for the rest of the body) and nothing is held: send
	// it again.
	answered := func() bool {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		defer func() { _ = c.SetReadDeadline(time.Time{}) }()
		n, _ := c.Read(make([]byte, 1))
		return n > 0
	}
	second := []byte(`{"schemaVersion":2` + strings.Repeat(" ", 100) + `}`) // 1001 + 120 > 1024
	deadline := time.Now().Add(60 * time.Second)                            // generous: CI machines run this under heavy load
	for {
		resp := do(t, http.MethodPut, srv.URL+"/v2/b/manifests/v1", second, "Content-Type", "application/vnd.oci.image.manifest.v1+json")
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			if answered() {
				t.Fatal("the first push was answered, yet the second was refused: nothing held the buffer")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second PUT: %s, want 429 while the first holds the buffer", resp.Status)
		}
		if answered() {
			t.Log("RESEND")
			c.Close()
			c = first()
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

// TestRefusedManifestPushIsAnsweredAtOnce: a manifest push refused before
// its body is read is answered at once and its connection closed, even
// when the client stalls mid-body. Without the close, net/http would first
// wait for the unread body (to reuse the connection), and the client would
// not hear the refusal until the server's read gave up.
func TestRefusedManifestPushIsAnsweredAtOnce(t *testing.T) {
	srv := newServer(t, registry.Config{MaxManifestBytes: 1024, MaxBufferedBytes: 4096})
	host := strings.TrimPrefix(srv.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /v2/a/manifests/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 2000\r\n\r\n{", host)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a too-big manifest push while its body stalls: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("got %s (close %v), want 400 and Connection: close", resp.Status, resp.Close)
	}
}
