package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
)

// vmHWMOf reads the peak resident set size (VmHWM) of a process, in bytes.
func vmHWMOf(t *testing.T, pid int) int64 {
	t.Helper()
	n := vmHWM(fmt.Sprintf("/proc/%d/status", pid))
	if n <= 0 {
		t.Fatalf("no VmHWM for pid %d", pid)
	}
	return n
}

// TestServeAnonymousBodiesAreNotRead: 60 anonymous clients that each start
// a 4 MiB manifest PUT and send half of it must not make `registry serve
// --htpasswd` read (and hold) their bodies: credentials are checked first.
// Issue 9 measured 40 MB → 380 MB before the fix.
func TestServeAnonymousBodiesAreNotRead(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("VmHWM is read from /proc (Linux)")
	}
	dir := t.TempDir()
	htpasswd := regtest.Htpasswd(t, dir, "alice", "s3cret")
	s := serve(t, t.TempDir(), "--htpasswd", htpasswd)
	before := vmHWMOf(t, s.cmd.Process.Pid)

	const clients, size = 60, 4 << 20
	half := make([]byte, size/2)
	for i := range half {
		half[i] = '{'
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < clients; i++ {
		c, err := net.Dial("tcp", s.Host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "PUT /v2/models/m%d/manifests/v1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: %d\r\n\r\n", i, s.Host, size)
		// The server may answer 401 and stop reading at any point.
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(half)
	}
	time.Sleep(2 * time.Second)
	after := vmHWMOf(t, s.cmd.Process.Pid)
	t.Logf("VmHWM %.1f MB before, %.1f MB after %d half-sent anonymous 4 MiB manifest PUTs", float64(before)/1e6, float64(after)/1e6, clients)
	if after > 100e6 {
		t.Fatalf("VmHWM %.1f MB after the anonymous PUTs, want < 100 MB", float64(after)/1e6)
	}
	// Every anonymous PUT was answered 401.
	for i, c := range conns[:3] {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		if !strings.Contains(string(buf[:n]), " 401 ") {
			t.Errorf("client %d: got %q, want a 401", i, buf[:n])
		}
	}
	// A real client still pushes.
	ma(t, "push", "--plain-http", "--no-progress", "-u", "alice", "-p", "s3cret", s.Host+"/models/ok:v1", regtest.ModelDir(t, 100))
}

// TestServeCatalog: GET /v2/_catalog lists the repositories, page by page,
// and crane and oras read it.
func TestServeCatalog(t *testing.T) {
	s := serve(t, t.TempDir())
	repos := []string{"models/a", "models/b", "team/c"}
	for _, r := range repos {
		ma(t, "push", "--plain-http", "--no-progress", s.Host+"/"+r+":v1", regtest.ModelDir(t, 10))
	}
	get := func(url string) ([]string, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Repositories []string `json:"repositories"`
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return body.Repositories, resp.Header.Get("Link")
	}
	if got, _ := get("http://" + s.Host + "/v2/_catalog"); strings.Join(got, ",") != strings.Join(repos, ",") {
		t.Fatalf("catalog %v, want %v", got, repos)
	}
	// Two at a time: the Link header leads to the rest.
	page, link := get("http://" + s.Host + "/v2/_catalog?n=2")
	if strings.Join(page, ",") != "models/a,models/b" || !strings.Contains(link, "last=models%2Fb") {
		t.Fatalf("first page %v, link %q", page, link)
	}
	next := strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
	if page, link = get("http://" + s.Host + next); strings.Join(page, ",") != "team/c" || link != "" {
		t.Fatalf("second page %v, link %q", page, link)
	}

	crane := regtest.Tool(t, "crane")
	if out := regtest.Run(t, crane, "catalog", "--insecure", s.Host); strings.Fields(out)[0] != "models/a" || len(strings.Fields(out)) != 3 {
		t.Errorf("crane catalog:\n%s", out)
	}
	oras := regtest.Tool(t, "oras")
	if out := regtest.Run(t, oras, "repo", "ls", "--plain-http", s.Host); len(strings.Fields(out)) != 3 || !strings.Contains(out, "team/c") {
		t.Errorf("oras repo ls:\n%s", out)
	}
}
