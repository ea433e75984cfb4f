package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// TestORASReadsOurArtifact: the real oras CLI pulls what we push (writing
// the same files, by their title annotation), sees the ModelPack
// artifactType, and copies it with its referrers; we pull oras's copy.
func TestORASReadsOurArtifact(t *testing.T) {
	oras := regtest.Tool(t, "oras")
	for name, host := range map[string]func(t *testing.T) string{
		"embedded":     func(t *testing.T) string { return regtest.Embedded(t, "") },
		"distribution": func(t *testing.T) string { return regtest.Distribution(t, "") },
	} {
		t.Run(name, func(t *testing.T) {
			h := host(t)
			model := regtest.ModelDir(t, 1<<20)
			ref := h + "/models/tiny:v1"
			digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", ref, model))

			// oras pull writes every file under its title.
			orasOut := filepath.Join(t.TempDir(), "oras-pulled")
			regtest.Run(t, oras, "pull", "--plain-http", "-o", orasOut, ref)
			regtest.SameContent(t, model, orasOut)

			// oras manifest fetch shows the ModelPack artifact type.
			var m struct {
				ArtifactType string `json:"artifactType"`
				Config       struct {
					MediaType string `json:"mediaType"`
				} `json:"config"`
			}
			if err := json.Unmarshal([]byte(regtest.Run(t, oras, "manifest", "fetch", "--plain-http", ref)), &m); err != nil {
				t.Fatal(err)
			}
			if m.ArtifactType != "application/vnd.cncf.model.manifest.v1+json" || m.Config.MediaType != "application/vnd.cncf.model.config.v1+json" {
				t.Fatalf("oras manifest fetch: %+v", m)
			}

			// oras attach a referrer, oras cp -r to another repository, and
			// we pull oras's copy and still see the referrer.
			note := filepath.Join(t.TempDir(), "note.txt")
			os.WriteFile(note, []byte("approved"), 0o644)
			regtest.Run(t, oras, "attach", "--disable-path-validation", "--plain-http", "--artifact-type", "application/vnd.example.note", ref, note+":text/plain")
			regtest.Run(t, oras, "cp", "-r", "--from-plain-http", "--to-plain-http", ref, h+"/mirror/tiny:v1")
			out := filepath.Join(t.TempDir(), "pulled")
			if got := digestOf(t, ma(t, "pull", "--plain-http", "--insecure-skip-verify", "--no-progress", "-o", out, h+"/mirror/tiny:v1")); got != digest {
				t.Fatalf("copy has digest %s, want %s", got, digest)
			}
			regtest.SameTree(t, model, out)
			tree := ma(t, "discover", "--plain-http", h+"/mirror/tiny:v1")
			if !strings.Contains(tree, "application/vnd.example.note") {
				t.Fatalf("discover on the copy:\n%s", tree)
			}
		})
	}
}

// TestORASDiscoverUsesReferrersAPI: on the embedded registry, oras attach
// and oras discover go through the Referrers API, so no sha256-<hex>
// fallback tag is ever written.
func TestORASDiscoverUsesReferrersAPI(t *testing.T) {
	oras := regtest.Tool(t, "oras")
	h := regtest.Embedded(t, "")
	ref := h + "/models/tiny:v1"
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", ref, regtest.ModelDir(t, 100)))
	note := filepath.Join(t.TempDir(), "note.txt")
	os.WriteFile(note, []byte("x"), 0o644)
	regtest.Run(t, oras, "attach", "--disable-path-validation", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", "application/vnd.example.note", ref, note)
	out := regtest.Run(t, oras, "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--format", "json", ref)
	if !strings.Contains(out, "application/vnd.example.note") {
		t.Fatalf("oras discover:\n%s", out)
	}
	tags := regtest.Run(t, oras, "repo", "tags", "--plain-http", h+"/models/tiny")
	if strings.Contains(tags, "sha256-"+strings.TrimPrefix(digest, "sha256:")) {
		t.Fatalf("a fallback tag was written: the Referrers API was not used\n%s", tags)
	}
}

// TestCraneReadsOurArtifact: go-containerregistry's crane fetches our
// manifest and copies the artifact between repositories; we pull the copy.
func TestCraneReadsOurArtifact(t *testing.T) {
	crane := regtest.Tool(t, "crane")
	h := regtest.Embedded(t, "")
	model := regtest.ModelDir(t, 1<<20)
	digest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", h+"/models/tiny:v1", model))
	m := regtest.Run(t, crane, "manifest", "--insecure", h+"/models/tiny:v1")
	if !strings.Contains(m, "application/vnd.cncf.model.manifest.v1+json") {
		t.Fatalf("crane manifest:\n%s", m)
	}
	if got := strings.TrimSpace(regtest.Run(t, crane, "digest", "--insecure", h+"/models/tiny:v1")); got != digest {
		t.Fatalf("crane digest %s, want %s", got, digest)
	}
	regtest.Run(t, crane, "copy", "--insecure", h+"/models/tiny:v1", h+"/crane/tiny:v1")
	out := filepath.Join(t.TempDir(), "pulled")
	if got := digestOf(t, ma(t, "pull", "--plain-http", "--insecure-skip-verify", "--no-progress", "-o", out, h+"/crane/tiny:v1")); got != digest {
		t.Fatalf("crane's copy has digest %s, want %s", got, digest)
	}
	regtest.SameTree(t, model, out)
}
