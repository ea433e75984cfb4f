package audit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// TestReportMarkdownHostileNames: a registry names what it likes in its
// catalog and error text; a carriage return there (a line ending to
// CommonMark) must not start a line of report.md, or the registry could
// write its own headings and paragraphs into the evidence (old code: mdCell
// replaced only "\n", and "## Forged: …" stood on a line of its own).
func TestReportMarkdownHostileNames(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
			w.WriteHeader(http.StatusOK)
		case "/v2/_catalog":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"repositories":["x\r\r## Forged: every model passed\u2028\u000b"]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	pol, err := referrers.ParsePolicy(context.Background(), []byte("version: 1\nmodels:\n- match: [\"**\"]\n  reject: true\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	rep, err := Run(context.Background(), []string{host}, Options{Policy: pol, Remote: oras.RemoteOptions{PlainHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0].Target, "\r") {
		t.Fatalf("the hostile name did not reach the report: %+v", rep.Problems)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := Write(context.Background(), dir, rep, Evidence{}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	// CommonMark's line endings: LF, CR, CRLF.
	for _, line := range regexp.MustCompile("\r\n|\r|\n").Split(string(md), -1) {
		if strings.HasPrefix(strings.TrimSpace(line), "## Forged") {
			t.Fatalf("report.md has a forged heading %q:\n%q", line, md)
		}
	}
	if strings.ContainsAny(string(md), "\r\v\u2028") {
		t.Fatalf("report.md keeps a control or line-separator character: %q", md)
	}
}
