package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/modelattest/modelattest/referrers"
)

//go:embed report.schema.json
var reportSchema []byte

// Evidence says what Write puts beside the report.
type Evidence struct {
	// PolicyName is the policy file's base name (zero: policy.yaml).
	PolicyName string
	// Policy is the policy file's bytes, copied as they are.
	Policy []byte
	// Signer, when set, signs a verification summary per model (vsa/) and
	// SHA256SUMS (SHA256SUMS.sigstore.json, checked by `cosign verify-blob
	// --bundle`). Zero: nothing is signed.
	Signer *referrers.Signer
	// VerifierID names the verifier in each VSA (zero: DefaultVerifierID).
	VerifierID string
}

// DefaultVerifierID names an audit run as the verifier of its summaries.
const DefaultVerifierID = "urn:modelattest:audit"

// CheckOutput refuses an output folder that holds anything: evidence is
// never mixed with older files.
func CheckOutput(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("output %s is not empty (it holds %s): give a new folder", dir, entries[0].Name())
	}
	return nil
}

// Write writes the evidence folder dir: report.json, report.schema.json,
// report.md, report.html, events.jsonl, the policy and policy.sha256, and
// with a signer vsa/*.sigstore.json, SHA256SUMS and its bundle. It writes
// into a fresh folder beside dir and renames it into place, so a failure
// leaves nothing behind.
func Write(ctx context.Context, dir string, rep *Report, ev Evidence) error {
	if err := CheckOutput(dir); err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := writeAll(ctx, tmp, rep, ev); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	_ = os.Remove(dir) // empty (checked above) or absent
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	ok = true
	return nil
}

func writeAll(ctx context.Context, dir string, rep *Report, ev Evidence) error {
	name := ev.PolicyName
	if name == "" {
		name = "policy.yaml"
	}
	if name == "report.json" || strings.HasPrefix(name, "SHA256SUMS") {
		name = "policy-" + name
	}
	files := map[string][]byte{
		name:                 ev.Policy,
		"policy.sha256":      []byte(rep.Policy.String() + "  " + name + "\n"),
		"report.schema.json": reportSchema,
	}
	if ev.Signer != nil {
		for i, m := range rep.Models {
			if m.report == nil {
				continue // no decision, nothing to summarise
			}
			st, err := vsaStatement(m, ev.VerifierID, name)
			if err != nil {
				return err
			}
			b, err := ev.Signer.SignStatement(ctx, st)
			if err != nil {
				return err
			}
			m.VSA = fmt.Sprintf("vsa/%03d-%s.sigstore.json", i+1, m.Digest.Encoded()[:16])
			files[m.VSA] = b
		}
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	files["report.json"] = append(js, '\n')
	var evs bytes.Buffer
	for _, e := range rep.Events {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		evs.Write(append(b, '\n'))
	}
	files["events.jsonl"] = evs.Bytes()
	files["report.md"] = []byte(markdown(rep, name))
	var h bytes.Buffer
	if err := htmlReport.Execute(&h, htmlData{Report: rep, PolicyName: name}); err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	files["report.html"] = h.Bytes()

	var names []string
	for n, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		names = append(names, n)
	}
	if ev.Signer == nil {
		return nil
	}
	// SHA256SUMS covers every file, in the format sha256sum -c reads.
	sort.Strings(names)
	var sums bytes.Buffer
	for _, n := range names {
		s := sha256.Sum256(files[n])
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(s[:]), n)
	}
	bundle, err := ev.Signer.SignBlob(ctx, sums.Bytes())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "SHA256SUMS"), sums.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "SHA256SUMS.sigstore.json"), bundle, 0o644)
}

// vsaStatement is the in-toto statement of the model's verification summary.
func vsaStatement(m *Model, verifierID, policyName string) ([]byte, error) {
	if verifierID == "" {
		verifierID = DefaultVerifierID
	}
	v, err := referrers.NewVSA(m.report, referrers.VSAOptions{VerifierID: verifierID, PolicyURI: policyName})
	if err != nil {
		return nil, err
	}
	pred, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return referrers.NewStatement(m.Digest, m.Repository, referrers.PredicateVSA, pred)
}

func markdown(rep *Report, policyName string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Model attestation audit\n\nRun `%s`, %s to %s.\n\n", rep.RunID, rep.StartedAt.Format("2006-01-02 15:04:05Z"), rep.FinishedAt.Format("15:04:05Z"))
	fmt.Fprintf(&b, "Policy `%s` (%s). Targets: %s.\n\n", policyName, rep.Policy, strings.Join(rep.Targets, ", "))
	s := rep.Summary
	fmt.Fprintf(&b, "| repositories | tags | models | passed | failed | errors |\n|---|---|---|---|---|---|\n| %d | %d | %d | %d | %d | %d |\n\n",
		s.Repositories, s.Tags, s.Models, s.Passed, s.Failed, s.Errors)
	b.WriteString("| repository | tags | digest | verdict | signers | builder | datasets |\n|---|---|---|---|---|---|---|\n")
	for _, m := range rep.Models {
		fmt.Fprintf(&b, "| %s | %s | `%s` | **%s** | %s | %s | %s |\n", mdCell(m.Repository), mdCell(strings.Join(m.Tags, ", ")), m.Digest,
			strings.ToUpper(m.Verdict), mdCell(strings.Join(m.Signers, ", ")), mdCell(strings.Join(m.Builders, ", ")), mdCell(strings.Join(m.Datasets, ", ")))
	}
	for _, m := range rep.Models {
		var failing []string
		for _, r := range m.Requirements {
			if r.Outcome != "satisfied" {
				failing = append(failing, fmt.Sprintf("- %s: %s", mdCell(r.What), mdCell(r.Reason)))
			}
		}
		if m.Error != "" {
			failing = append(failing, "- could not verify: "+mdCell(m.Error))
		}
		if len(failing) > 0 {
			fmt.Fprintf(&b, "\n## %s@%s (%s)\n\n%s\n", mdCell(m.Repository), m.Digest, strings.Join(m.Tags, ", "), strings.Join(failing, "\n"))
		}
	}
	if len(rep.Problems) > 0 {
		b.WriteString("\n## Not audited\n\n")
		for _, p := range rep.Problems {
			fmt.Fprintf(&b, "- %s: %s\n", mdCell(p.Target), mdCell(p.Error))
		}
	}
	if rep.Controls != "" {
		fmt.Fprintf(&b, "\n## Controls (%s)\n\n| model | control | status | evidence |\n|---|---|---|---|\n", rep.Controls)
		for _, m := range rep.Models {
			for _, c := range m.Controls {
				fmt.Fprintf(&b, "| %s@%s | %s | %s | %s |\n", mdCell(m.Repository), m.Digest.Encoded()[:12], c.ID, c.Status, mdCell(strings.Join(c.Requirements, ", ")))
			}
		}
	}
	return b.String()
}

// mdCell makes text from registries and signatures one inert Markdown
// cell: pipes escaped, no HTML, and every control character (CR is a line
// ending to CommonMark, as LF is) and line separator turned into a space,
// so the text can never start a line of its own.
func mdCell(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;").Replace(s)
}

type htmlData struct {
	Report     *Report
	PolicyName string
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"join": strings.Join,
	"svg":  func(m *Model) template.HTML { return template.HTML(m.Graph.SVG()) }, //nolint:gosec // graph.SVG escapes every text it draws
	"short": func(s string) string {
		if len(s) > 19 {
			return s[:19] + "…"
		}
		return s
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>Model attestation audit {{.Report.RunID}}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}
tr.fail td,li.fail{background:#fdecea}
tr.error td{background:#fff4e5}
.verdict-pass{color:#2e7d32;font-weight:bold}.verdict-fail{color:#c62828;font-weight:bold}.verdict-error{color:#e65100;font-weight:bold}
code{font-size:12px}
section.model{border-top:1px solid #ddd;margin-top:1.5em}
</style>
</head>
<body>
<h1>Model attestation audit</h1>
<p>Run <code>{{.Report.RunID}}</code>, {{.Report.StartedAt.Format "2006-01-02 15:04:05Z"}} to {{.Report.FinishedAt.Format "15:04:05Z"}}.
Policy <code>{{.PolicyName}}</code> (<code>{{.Report.Policy}}</code>). Targets: {{join .Report.Targets ", "}}.</p>
{{with .Report.Summary}}
<table id="summary"><tr><th>repositories</th><th>tags</th><th>models</th><th>passed</th><th>failed</th><th>errors</th></tr>
<tr><td>{{.Repositories}}</td><td>{{.Tags}}</td><td>{{.Models}}</td><td>{{.Passed}}</td><td>{{.Failed}}</td><td>{{.Errors}}</td></tr></table>
{{end}}
<table id="models">
<thead><tr><th>repository</th><th>tags</th><th>digest</th><th>verdict</th><th>signers</th><th>provenance builder</th><th>datasets</th></tr></thead>
<tbody>
{{range $i, $m := .Report.Models}}<tr class="model {{$m.Verdict}}" data-digest="{{$m.Digest}}"><td>{{$m.Repository}}</td><td>{{join $m.Tags ", "}}</td><td><a href="#m{{$i}}"><code>{{short (print $m.Digest)}}</code></a></td><td class="verdict-{{$m.Verdict}}">{{$m.Verdict}}</td><td>{{join $m.Signers ", "}}</td><td>{{join $m.Builders ", "}}</td><td>{{join $m.Datasets ", "}}</td></tr>
{{end}}</tbody>
</table>
{{if .Report.Problems}}<h2>Not audited</h2><ul>{{range .Report.Problems}}<li class="fail">{{.Target}}: {{.Error}}</li>{{end}}</ul>{{end}}
{{range $i, $m := .Report.Models}}
<section class="model" id="m{{$i}}">
<h2>{{$m.Repository}} <small>{{join $m.Tags ", "}}</small></h2>
<p><code>{{$m.Digest}}</code> — <span class="verdict-{{$m.Verdict}}">{{$m.Verdict}}</span>{{if ge $m.Rule 0}}, rule {{$m.Rule}} ({{$m.Mode}}){{end}}{{if $m.VSA}}, summary <code>{{$m.VSA}}</code>{{end}}</p>
{{if $m.Error}}<p class="fail">could not verify: {{$m.Error}}</p>{{end}}
<ul class="requirements">{{range $m.Requirements}}<li class="{{if eq .Outcome "satisfied"}}ok{{else}}fail{{end}}">{{.What}}: {{.Outcome}}{{if .Reason}} — {{.Reason}}{{end}}</li>{{end}}</ul>
{{if $m.Controls}}<table class="controls"><tr><th>control</th><th>status</th><th>evidence</th></tr>{{range $m.Controls}}<tr class="{{if eq .Status "failed"}}fail{{end}}"><td>{{.ID}} {{.Title}}</td><td>{{.Status}}</td><td>{{join .Requirements ", "}}</td></tr>{{end}}</table>{{end}}
{{svg $m}}
</section>
{{end}}
</body>
</html>
`))
