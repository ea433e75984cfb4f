package graph_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/modelattest/modelattest/graph"
	"github.com/modelattest/modelattest/referrers"
)

func sample() *graph.Graph {
	m, sig, prov, evil := digest.FromString("m"), digest.FromString("s"), digest.FromString("p"), digest.FromString("e")
	return graph.FromReport("reg.example/models/llama", &referrers.Report{Model: ocispec.Descriptor{Digest: m}, Referrers: []referrers.Finding{
		{Digest: sig, Subject: m, Depth: 1, PredicateType: referrers.PredicateCosignSign, Verdict: "verified", VerifiedBy: []string{"release"}},
		{Digest: prov, Subject: m, Depth: 1, PredicateType: referrers.PredicateSLSAProvenance, Verdict: "verified", VerifiedBy: []string{"ci"}},
		{Digest: evil, Subject: sig, Depth: 2, PredicateType: `https://x/"><script>alert(1)</script>`, Verdict: "untrusted"},
	}})
}

// TestRenderings: each format has every node and edge; SVG is well-formed
// XML with no script and hostile text escaped; Mermaid and DOT quote it.
func TestRenderings(t *testing.T) {
	g := sample()
	if len(g.Nodes) != 4 || len(g.Edges) != 3 || g.Nodes[1].Kind != graph.KindSignature || g.Nodes[2].Kind != graph.KindAttestation {
		t.Fatalf("%+v", g)
	}
	svg := g.SVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	rects, lines := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "rect":
				rects++
			case "line":
				lines++
			case "script", "image", "foreignObject":
				t.Fatalf("SVG has a <%s>", se.Name.Local)
			}
		}
	}
	if rects != 4 || lines != 3 || strings.Contains(svg, "<script") {
		t.Errorf("%d boxes, %d arrows:\n%s", rects, lines, svg)
	}
	var m, d bytes.Buffer
	g.Mermaid(&m)
	g.DOT(&d)
	for name, out := range map[string]string{"mermaid": m.String(), "dot": d.String()} {
		for _, want := range []string{"SLSA provenance", "verified by release", "sha256:" + digest.FromString("s").Encoded()[:12]} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q:\n%s", name, want, out)
			}
		}
	}
	if !strings.HasPrefix(m.String(), "flowchart BT\n") || strings.Count(m.String(), "-->") != 3 || strings.Contains(m.String(), `"><script`) {
		t.Errorf("mermaid:\n%s", m.String())
	}
	if !strings.HasPrefix(d.String(), "digraph referrers {") || strings.Count(d.String(), " -> ") != 3 || strings.Contains(d.String(), `x/">`) {
		t.Errorf("dot:\n%s", d.String())
	}
}
