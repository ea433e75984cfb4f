package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

var (
	rowRE = regexp.MustCompile(`<tr class="model (pass|fail|error)" data-digest="(sha256:[0-9a-f]{64})">`)
	svgRE = regexp.MustCompile(`<svg [^>]*class="referrer-graph"`)
)

// checkReport checks a rendered report.html through the DOM Chromium
// built: one table row per model with its verdict, one SVG graph per
// model, and no console line (a CSP violation is one).
func checkReport(page regtest.Page, want map[string]string) []string {
	var problems []string
	rows := rowRE.FindAllStringSubmatch(page.DOM, -1)
	got := map[string]string{}
	for _, r := range rows {
		got[r[2]] = r[1]
	}
	if len(rows) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		problems = append(problems, fmt.Sprintf("rows %v, want %v", got, want))
	}
	if n := len(svgRE.FindAllString(page.DOM, -1)); n != len(want) {
		problems = append(problems, fmt.Sprintf("%d SVG graphs, want %d", n, len(want)))
	}
	for _, c := range page.Console {
		problems = append(problems, "console: "+c)
	}
	return problems
}

// TestAuditReportInChromium: report.html, opened in headless Chromium
// (Debian's package), has a row per model with its verdict, one SVG graph
// per model and logs nothing to the console; a screenshot is kept in the
// test's artifact folder (go test -artifacts). A deliberately broken copy
// (one graph removed, an inline script added) fails the same check, so the
// check bites.
func TestAuditReportInChromium(t *testing.T) {
	chromium := regtest.Chromium(t)
	w := newAuditWorld(t, regtest.Embedded(t, ""))
	out := filepath.Join(t.TempDir(), "evidence")
	if res, code := maCode(t, "audit", "--plain-http", "--policy", w.policy, "--output", out, "--controls", "nist-ssdf", w.repo); code != 3 {
		t.Fatalf("audit: exit %d\n%s", code, res)
	}
	_, models := readReport(t, out)
	want := map[string]string{}
	for _, m := range models {
		want[m.Digest] = m.Verdict
	}
	report := filepath.Join(out, "report.html")
	page := regtest.LoadPage(t, chromium, report, filepath.Join(t.ArtifactDir(), "report.png"))
	if problems := checkReport(page, want); len(problems) > 0 {
		t.Fatalf("report.html:\n%s", strings.Join(problems, "\n"))
	}

	html := string(readFile(t, report))
	start := strings.Index(html, "<svg ")
	end := strings.Index(html[start:], "</svg>") + start + len("</svg>")
	broken := html[:start] + `<script>console.error("broken")</script>` + html[end:]
	bad := filepath.Join(t.TempDir(), "broken.html")
	os.WriteFile(bad, []byte(broken), 0o644)
	problems := checkReport(regtest.LoadPage(t, chromium, bad, ""), want)
	if len(problems) < 2 {
		t.Fatalf("the broken page passed the check: %v", problems)
	}
	t.Logf("the broken page fails as it should: %v", problems)
}

// TestDiscoverPictures: discover --format mermaid|dot draws the model, its
// signature and its provenance from the same graph code as the report,
// with arrows from each referrer to the model.
func TestDiscoverPictures(t *testing.T) {
	w := newAuditWorld(t, regtest.Embedded(t, ""))
	mermaid := ma(t, "discover", "--plain-http", "--format", "mermaid", w.repo+":good")
	dot := ma(t, "discover", "--plain-http", "--format", "dot", w.repo+":good")
	for name, c := range map[string]struct {
		out, head, arrow string
	}{"mermaid": {mermaid, "flowchart BT\n", " --> n0\n"}, "dot": {dot, "digraph referrers {", " -> n0;\n"}} {
		if !strings.HasPrefix(c.out, c.head) || strings.Count(c.out, c.arrow) != 2 ||
			!strings.Contains(c.out, "signature") || !strings.Contains(c.out, "SLSA provenance") || !strings.Contains(c.out, w.digests["good"][:19]) {
			t.Errorf("%s:\n%s", name, c.out)
		}
	}
}
