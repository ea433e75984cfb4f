// Package graph draws a model's referrer graph — the model, its
// signatures, its attestations with their predicate types and signers — as
// Mermaid, Graphviz DOT or self-contained SVG. discover and the audit
// report draw from the same Graph, so a picture means the same everywhere.
package graph

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/referrers"
)

// Kind says what a node is.
type Kind string

// Node kinds.
const (
	KindModel       Kind = "model"
	KindSignature   Kind = "signature"
	KindAttestation Kind = "attestation"
	KindOther       Kind = "other"
)

// Node is one manifest in the graph.
type Node struct {
	Digest        digest.Digest `json:"digest"`
	Kind          Kind          `json:"kind"`
	Label         string        `json:"label"`
	PredicateType string        `json:"predicateType,omitempty"`
	// Verdict is verify's verdict on the referrer ("verified", "untrusted",
	// "rejected", "legacy"), or "" when the graph was not verified
	// (discover: what the registry lists).
	Verdict string   `json:"verdict,omitempty"`
	Signers []string `json:"signers,omitempty"`
	Depth   int      `json:"depth"`
}

// Edge points from a referrer to its subject.
type Edge struct {
	From digest.Digest `json:"from"`
	To   digest.Digest `json:"to"`
}

// Graph is a model and what refers to it, breadth-first.
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// FromReport draws what verification found: every referrer with its
// verdict and the anchors that verified it.
func FromReport(name string, rep *referrers.Report) *Graph {
	g := &Graph{Nodes: []Node{{Digest: rep.Model.Digest, Kind: KindModel, Label: name}}}
	for _, f := range rep.Referrers {
		g.Nodes = append(g.Nodes, Node{Digest: f.Digest, Kind: kindOf(f.PredicateType, f.ArtifactType), Label: labelOf(f.PredicateType, f.ArtifactType),
			PredicateType: f.PredicateType, Verdict: string(f.Verdict), Signers: f.VerifiedBy, Depth: f.Depth})
		g.Edges = append(g.Edges, Edge{From: f.Digest, To: f.Subject})
	}
	return g
}

// FromWalk draws what a registry lists (referrers.Walk): nothing in it is
// verified.
func FromWalk(name string, root *referrers.Node) *Graph {
	g := &Graph{Nodes: []Node{{Digest: root.Digest, Kind: KindModel, Label: name}}}
	var add func(n *referrers.Node, depth int)
	add = func(n *referrers.Node, depth int) {
		for _, r := range n.Referrers {
			pt := r.Annotations[referrers.AnnotationPredicateType]
			node := Node{Digest: r.Digest, Kind: kindOf(pt, r.ArtifactType), Label: labelOf(pt, r.ArtifactType), PredicateType: pt, Depth: depth}
			if r.Notation != nil && r.Notation.Signer != "" {
				node.Signers = []string{r.Notation.Signer + " (claimed)"}
			}
			g.Nodes = append(g.Nodes, node)
			g.Edges = append(g.Edges, Edge{From: r.Digest, To: n.Digest})
			add(r, depth+1)
		}
	}
	add(root, 1)
	return g
}

func kindOf(predicateType, artifactType string) Kind {
	switch {
	case predicateType == referrers.PredicateCosignSign || artifactType == referrers.NotationArtifactType:
		return KindSignature
	case predicateType != "":
		return KindAttestation
	}
	return KindOther
}

// labelOf names a referrer by what it claims to be.
func labelOf(predicateType, artifactType string) string {
	switch {
	case predicateType == referrers.PredicateCosignSign:
		return "signature"
	case artifactType == referrers.NotationArtifactType:
		return "notation signature"
	case predicateType == referrers.PredicateSLSAProvenance:
		return "SLSA provenance"
	case predicateType == referrers.PredicateModelSigning:
		return "model signing"
	case predicateType == referrers.PredicateVSA:
		return "verification summary"
	case predicateType != "":
		return predicateType
	case artifactType != "":
		return artifactType
	}
	return "referrer"
}

func short(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return d.Algorithm().String() + ":" + e
}

func (n Node) lines() []string {
	l := []string{n.Label, short(n.Digest)}
	if n.Verdict != "" {
		v := n.Verdict
		if len(n.Signers) > 0 {
			v += " by " + strings.Join(n.Signers, ", ")
		}
		l = append(l, v)
	} else if len(n.Signers) > 0 {
		l = append(l, strings.Join(n.Signers, ", "))
	}
	return l
}

// ids gives each node a stable identifier usable in Mermaid and DOT.
func (g *Graph) ids() map[digest.Digest]string {
	ids := map[digest.Digest]string{}
	for i, n := range g.Nodes {
		ids[n.Digest] = fmt.Sprintf("n%d", i)
	}
	return ids
}

// mermaidText keeps a label inside Mermaid's quoted node text.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", " ").Replace(s)
}

// Mermaid writes a flowchart (referrer --> subject).
func (g *Graph) Mermaid(w io.Writer) error {
	ids := g.ids()
	var b strings.Builder
	b.WriteString("flowchart BT\n")
	for _, n := range g.Nodes {
		parts := n.lines()
		for i := range parts {
			parts[i] = mermaidText(parts[i])
		}
		fmt.Fprintf(&b, "  %s[\"%s\"]\n", ids[n.Digest], strings.Join(parts, "<br/>"))
		if n.Kind != KindModel {
			fmt.Fprintf(&b, "  class %s %s\n", ids[n.Digest], classOf(n))
		}
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s --> %s\n", ids[e.From], ids[e.To])
	}
	b.WriteString("  classDef verified stroke:#2e7d32,stroke-width:2px\n  classDef failed stroke:#c62828,stroke-width:2px,stroke-dasharray:4\n  classDef listed stroke:#555\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func classOf(n Node) string {
	switch n.Verdict {
	case "verified", "legacy":
		return "verified"
	case "":
		return "listed"
	}
	return "failed"
}

// dotText escapes a DOT quoted string.
func dotText(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", " ").Replace(s)
}

// DOT writes a Graphviz digraph (referrer -> subject).
func (g *Graph) DOT(w io.Writer) error {
	ids := g.ids()
	var b strings.Builder
	b.WriteString("digraph referrers {\n  rankdir=BT;\n  node [shape=box, fontname=\"sans-serif\"];\n")
	for _, n := range g.Nodes {
		parts := n.lines()
		for i := range parts {
			parts[i] = dotText(parts[i])
		}
		style := ""
		switch {
		case n.Kind == KindModel:
			style = ", style=bold"
		case classOf(n) == "verified":
			style = ", color=\"#2e7d32\""
		case classOf(n) == "failed":
			style = ", color=\"#c62828\", style=dashed"
		}
		fmt.Fprintf(&b, "  %s [label=\"%s\"%s];\n", ids[n.Digest], strings.Join(parts, `\n`), style)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  %s -> %s;\n", ids[e.From], ids[e.To])
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// SVG layout constants: one row per depth, nodes spread along it.
const (
	boxW, boxH = 230, 58
	gapX, gapY = 20, 50
	margin     = 10
)

// SVG draws the graph as a self-contained SVG element: no script, no
// external reference, text escaped. The model is on top, each level of
// referrers below it, arrows pointing at the subject.
func (g *Graph) SVG() string {
	rows := map[int][]int{}
	maxDepth, maxRow := 0, 1
	for i, n := range g.Nodes {
		rows[n.Depth] = append(rows[n.Depth], i)
		maxDepth = max(maxDepth, n.Depth)
		maxRow = max(maxRow, len(rows[n.Depth]))
	}
	width := margin*2 + maxRow*boxW + (maxRow-1)*gapX
	height := margin*2 + (maxDepth+1)*boxH + maxDepth*gapY
	pos := map[digest.Digest][2]int{}
	for depth := 0; depth <= maxDepth; depth++ {
		row := rows[depth]
		rowW := len(row)*boxW + max(len(row)-1, 0)*gapX
		x0 := (width - rowW) / 2
		for j, i := range row {
			pos[g.Nodes[i].Digest] = [2]int{x0 + j*(boxW+gapX), margin + depth*(boxH+gapY)}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="referrer-graph" role="img" width="%d" height="%d" viewBox="0 0 %d %d">`, width, height, width, height)
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>`)
	for _, e := range g.Edges {
		f, t := pos[e.From], pos[e.To]
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555" marker-end="url(#arrow)"/>`, f[0]+boxW/2, f[1], t[0]+boxW/2, t[1]+boxH)
	}
	for _, n := range g.Nodes {
		p := pos[n.Digest]
		stroke, dash := "#333", ""
		switch classOf(n) {
		case "verified":
			stroke = "#2e7d32"
		case "failed":
			stroke, dash = "#c62828", ` stroke-dasharray="4"`
		}
		if n.Kind == KindModel {
			stroke = "#1a237e"
		}
		fmt.Fprintf(&b, `<g class="node %s" data-digest="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff" stroke="%s" stroke-width="2"%s/>`,
			n.Kind, html.EscapeString(n.Digest.String()), p[0], p[1], boxW, boxH, stroke, dash)
		for i, l := range n.lines() {
			if r := []rune(l); len(r) > 36 {
				l = string(r[:35]) + "…"
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="11" text-anchor="middle">%s</text>`, p[0]+boxW/2, p[1]+16+i*15, html.EscapeString(l))
		}
		b.WriteString(`<title>` + html.EscapeString(n.Digest.String()+" "+n.PredicateType) + `</title></g>`)
	}
	b.WriteString(`</svg>`)
	return b.String()
}
