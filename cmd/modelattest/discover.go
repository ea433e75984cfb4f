package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/modelattest/modelattest/graph"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

func newDiscoverCmd() *cobra.Command {
	var of outputFlags
	var rf remoteFlags
	var layout bool
	var artifactType string
	var depth int
	cmd := &cobra.Command{
		Use:   "discover REF",
		Short: "List a model's referrers (signatures, attestations) as a tree, like oras discover",
		Long: `Discover lists what the registry says refers to a model. The listing only
locates candidates: nothing in it is trusted until verify checks it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("tree", "json", "mermaid", "dot"); err != nil {
				return err
			}
			if depth < 1 {
				return usageError{fmt.Errorf("--depth %d: want 1 or more", depth)}
			}
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				return err
			}
			root, err := referrers.Walk(cmd.Context(), t, desc, referrers.WalkOptions{
				Limits:       referrers.Limits{MaxDepth: depth},
				ArtifactType: artifactType,
			}, func(ctx context.Context, n *referrers.Node) (bool, error) {
				if n.ArtifactType == referrers.NotationArtifactType {
					n.Notation, _ = referrers.ReadNotationClaim(ctx, t, n.Descriptor, n.Parent.Digest)
				}
				return true, nil
			})
			if err != nil {
				return err
			}
			switch of.format {
			case "json":
				return printJSON(cmd.OutOrStdout(), root)
			case "mermaid":
				return graph.FromWalk(t.Name, root).Mermaid(cmd.OutOrStdout())
			case "dot":
				return graph.FromWalk(t.Name, root).DOT(cmd.OutOrStdout())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", t.Name, desc.Digest)
			printTree(cmd.OutOrStdout(), root.Referrers, "")
			return nil
		},
	}
	cmd.Flags().StringVar(&of.format, "format", "tree", "output format: tree, json, mermaid, dot (the referrer graph as a picture)")
	rf.add(cmd.Flags())
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	cmd.Flags().StringVar(&artifactType, "artifact-type", "", "list only referrers of this artifact type")
	cmd.Flags().IntVar(&depth, "depth", oras.MaxReferrerDepth, "levels of referrers to follow")
	return cmd
}

func printTree(w io.Writer, nodes []*referrers.Node, indent string) {
	for i, n := range nodes {
		branch, next := "├── ", "│   "
		if i == len(nodes)-1 {
			branch, next = "└── ", "    "
		}
		at := n.ArtifactType
		if at == "" {
			at = n.MediaType
		}
		fmt.Fprintf(w, "%s%s%s\n", indent, branch, at)
		fmt.Fprintf(w, "%s%s└── %s\n", indent, next, n.Digest)
		if pt := n.Annotations["dev.sigstore.bundle.predicateType"]; pt != "" {
			fmt.Fprintf(w, "%s%s    predicateType: %s\n", indent, next, pt)
		}
		if c := n.Notation; c != nil {
			fmt.Fprintf(w, "%s%s    %s signed by %s (%s; not verified: run verify)\n", indent, next, c.Format, c.Signer, c.SigningScheme)
		}
		printTree(w, n.Referrers, indent+next+"    ")
	}
}
