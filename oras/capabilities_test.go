package oras_test

import (
	"context"
	"testing"

	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
)

// TestTargetKeepsReferrerLister: oras-go's own registry.Referrers, given a
// Target, lists through the registry's Referrers API as it would given the
// repository itself, instead of falling back to fetching every manifest
// that names the model.
func TestTargetKeepsReferrerLister(t *testing.T) {
	ctx := context.Background()
	proxy := regtest.NewProxy(t, regtest.Embedded(t, ""))
	tgt := openRemote(t, proxy.Host, "models/tiny", "")
	desc, err := oras.Push(ctx, tgt, "v1", regtest.ModelDir(t, 64), oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := orasgo.PackManifest(ctx, tgt, orasgo.PackManifestVersion1_1, "application/vnd.example.note",
		orasgo.PackManifestOptions{Subject: &desc})
	if err != nil {
		t.Fatal(err)
	}
	var _ registry.ReferrerLister = tgt
	proxy.Reset()
	refs, err := registry.Referrers(ctx, tgt, desc, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].Digest != ref.Digest {
		t.Fatalf("referrers %v", refs)
	}
	if n := proxy.Count("GET", "/v2/models/tiny/referrers/"); n != 1 {
		t.Errorf("%d Referrers API calls, want 1", n)
	}
	if n := proxy.Count("GET", "/v2/models/tiny/manifests/"+ref.Digest.String()); n != 0 {
		t.Errorf("the referrer manifest was fetched %d times to list it", n)
	}

	// An OCI layout has no Referrers API: the same call lists from its index.
	lay := layout(t)
	ldesc, err := oras.Push(ctx, lay, "v1", regtest.ModelDir(t, 64), oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lref, err := orasgo.PackManifest(ctx, lay, orasgo.PackManifestVersion1_1, "application/vnd.example.note",
		orasgo.PackManifestOptions{Subject: &ldesc})
	if err != nil {
		t.Fatal(err)
	}
	if refs, err := registry.Referrers(ctx, lay, ldesc, ""); err != nil || len(refs) != 1 || refs[0].Digest != lref.Digest {
		t.Fatalf("layout referrers %v, err %v", refs, err)
	}
}
