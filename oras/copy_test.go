package oras_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// attach pushes a small artifact whose subject is desc and returns it.
func attach(t *testing.T, dst orasgo.Target, subject ocispec.Descriptor, artifactType, content string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	blob := []byte(content)
	layer := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := dst.Push(ctx, layer, bytes.NewReader(blob)); err != nil {
		t.Fatal(err)
	}
	desc, err := orasgo.PackManifest(ctx, dst, orasgo.PackManifestVersion1_1, artifactType, orasgo.PackManifestOptions{
		Subject: &subject, Layers: []ocispec.Descriptor{layer},
	})
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

func referrerDigests(t *testing.T, tgt *oras.Target, subject ocispec.Descriptor) map[digest.Digest]string {
	t.Helper()
	refs, err := oras.Referrers(context.Background(), tgt, subject, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[digest.Digest]string{}
	for _, r := range refs {
		out[r.Digest] = r.ArtifactType
	}
	return out
}

func TestReferrersAPIAndTagSchema(t *testing.T) {
	host := regtest.Embedded(t, "")
	for _, mode := range []oras.ReferrersMode{oras.ReferrersAPI, oras.ReferrersTag} {
		t.Run(string(mode), func(t *testing.T) {
			tgt := openRemote(t, host, "models/"+string(mode[5:]), mode)
			model := push(t, tgt, regtest.ModelDir(t, 10))
			sig := attach(t, tgt, model, "application/vnd.example.sig", "sig")
			att := attach(t, tgt, model, "application/vnd.example.att", "att")
			sigOfSig := attach(t, tgt, sig, "application/vnd.example.sig", "sig of sig")
			got := referrerDigests(t, tgt, model)
			if len(got) != 2 || got[sig.Digest] != "application/vnd.example.sig" || got[att.Digest] != "application/vnd.example.att" {
				t.Fatalf("referrers of the model = %v", got)
			}
			if got := referrerDigests(t, tgt, sig); len(got) != 1 || got[sigOfSig.Digest] == "" {
				t.Fatalf("referrers of the signature = %v", got)
			}
			filtered, err := oras.Referrers(context.Background(), tgt, model, "application/vnd.example.att")
			if err != nil || len(filtered) != 1 || filtered[0].Digest != att.Digest {
				t.Fatalf("filtered = %v, %v", filtered, err)
			}
			// The tag schema writes a sha256-<hex> index tag; the API must not.
			var all []string
			if err := tgt.GraphTarget.(*remote.Repository).Tags(context.Background(), "", func(ts []string) error {
				all = append(all, ts...)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			wantTag := "sha256-" + model.Digest.Encoded()
			has := false
			for _, tg := range all {
				has = has || tg == wantTag
			}
			if has != (mode == oras.ReferrersTag) {
				t.Fatalf("mode %s: tags %v", mode, all)
			}
		})
	}
}

func TestCopyWithReferrersThroughAirGap(t *testing.T) {
	ctx := context.Background()
	src := openRemote(t, regtest.Embedded(t, ""), "models/tiny", "")
	model := regtest.ModelDir(t, 64<<10)
	desc := push(t, src, model)
	sig := attach(t, src, desc, "application/vnd.example.sig", "sig")
	sigOfSig := attach(t, src, sig, "application/vnd.example.sig", "countersig")

	// registry → OCI layout (carried across the gap) → another registry
	// without the Referrers API on the client side.
	lay := layout(t)
	if err := oras.Copy(ctx, src, desc, lay, "v1", oras.CopyOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	dst := openRemote(t, regtest.Embedded(t, ""), "mirror/tiny", oras.ReferrersTag)
	ldesc, err := oras.Resolve(ctx, lay, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := oras.Copy(ctx, lay, ldesc, dst, "v1", oras.CopyOptions{Referrers: true}); err != nil {
		t.Fatal(err)
	}
	for name, tgt := range map[string]*oras.Target{"layout": lay, "mirror": dst} {
		if got := referrerDigests(t, tgt, desc); len(got) != 1 || got[sig.Digest] == "" {
			t.Errorf("%s: referrers of the model = %v", name, got)
		}
		if got := referrerDigests(t, tgt, sig); len(got) != 1 || got[sigOfSig.Digest] == "" {
			t.Errorf("%s: referrers of the signature = %v", name, got)
		}
	}
	out := filepath.Join(t.TempDir(), "out")
	final, err := oras.Resolve(ctx, dst, "v1")
	if err != nil || final.Digest != desc.Digest {
		t.Fatalf("mirror v1 = %v, %v", final.Digest, err)
	}
	if _, err := oras.Pull(ctx, dst, final, out, oras.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	regtest.SameTree(t, model, out)

	// Without -r only the model travels.
	bare := layout(t)
	if err := oras.Copy(ctx, src, desc, bare, "v1", oras.CopyOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := referrerDigests(t, bare, desc); len(got) != 0 {
		t.Fatalf("copy without referrers copied %v", got)
	}
}
