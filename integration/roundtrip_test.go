package integration

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestRoundTripThreeTargets pushes a model with the CLI and pulls it back
// from the embedded registry (Referrers API), the CNCF distribution registry
// run as a process (no Referrers API), and an OCI layout: every file's
// bytes, relative path and mode must come back.
func TestRoundTripThreeTargets(t *testing.T) {
	model := regtest.ModelDir(t, 3<<20)
	targets := map[string]func(t *testing.T) []string{
		"embedded": func(t *testing.T) []string {
			return []string{"--plain-http", regtest.Embedded(t, "") + "/models/tiny:v1"}
		},
		"distribution": func(t *testing.T) []string {
			return []string{"--plain-http", regtest.Distribution(t, "") + "/models/tiny:v1"}
		},
		"oci-layout": func(t *testing.T) []string {
			return []string{"--oci-layout", filepath.Join(t.TempDir(), "layout") + ":v1"}
		},
	}
	digests := map[string]string{}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			args := target(t)
			pushed := digestOf(t, ma(t, append([]string{"push", "--no-progress", "--created", "2026-01-01T00:00:00Z", "--name", "tiny"}, append(args, model)...)...))
			digests[name] = pushed
			info := ma(t, append([]string{"inspect"}, args...)...)
			if !strings.Contains(info, "application/vnd.cncf.model.manifest.v1+json") || !strings.Contains(info, "scripts/convert.py") {
				t.Fatalf("inspect:\n%s", info)
			}
			out := filepath.Join(t.TempDir(), "pulled")
			pulled := digestOf(t, ma(t, append([]string{"pull", "--no-progress", "--insecure-skip-verify", "-o", out}, args...)...))
			if pulled != pushed {
				t.Fatalf("pulled %s, pushed %s", pulled, pushed)
			}
			regtest.SameTree(t, model, out)
		})
	}
	if len(digests) == 3 && (digests["embedded"] != digests["distribution"] || digests["embedded"] != digests["oci-layout"]) {
		t.Fatalf("one model, three digests: %v", digests)
	}
}

func TestPackIsReproducible(t *testing.T) {
	model := regtest.ModelDir(t, 1<<20)
	var got []string
	for i := 0; i < 2; i++ {
		layout := filepath.Join(t.TempDir(), "layout") + ":v1"
		cmd := []string{"pack", model, "-o", layout, "--name", "tiny", "--no-progress"}
		got = append(got, digestOf(t, ma(t, cmd...)))
	}
	if got[0] != got[1] {
		t.Fatalf("the same directory packed to %s and %s", got[0], got[1])
	}
}
