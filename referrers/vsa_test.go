package referrers

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestCheckVSA: a summary counts only when PASSED, about this digest (the
// repository may differ), by a listed verifier, under an accepted policy
// digest and younger than maxAge. Before these checks every case counted.
func TestCheckVSA(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	model := digest.FromString("model")
	policy := digest.FromString("policy")
	rule, err := compileVSA(VSARule{VerifierIDs: []string{"https://ci.acme.example/gate"}, PolicyDigests: []string{policy.String()}, MaxAge: "24h"}, "vsa")
	if err != nil {
		t.Fatal(err)
	}
	good := func() *VSA {
		rep := &Report{Repository: "registry.example/models/x", Model: descOf(model), Policy: policy, Passed: true, VerifiedAt: now.Add(-time.Hour)}
		v, err := NewVSA(rep, VSAOptions{VerifierID: "https://ci.acme.example/gate"})
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	for name, tc := range map[string]struct {
		edit func(*VSA)
		want string // "" passes
	}{
		"good":                         {func(*VSA) {}, ""},
		"copied to another repository": {func(v *VSA) { v.ResourceURI = "oci://airgap.example/mirror/x@" + model.String() }, ""},
		"FAILED":                       {func(v *VSA) { v.VerificationResult = VSAFailed }, `verification result is "FAILED", want PASSED`},
		"no result":                    {func(v *VSA) { v.VerificationResult = "" }, `verification result is ""`},
		"other digest in resourceUri":  {func(v *VSA) { v.ResourceURI = "oci://registry.example/models/x@" + digest.FromString("other").String() }, "does not name the model's digest"},
		"no digest in resourceUri":     {func(v *VSA) { v.ResourceURI = "oci://registry.example/models/x:v1" }, "does not name the model's digest"},
		"unlisted verifier":            {func(v *VSA) { v.Verifier.ID = VerifierID }, `verifier id "https://github.com/modelattest/modelattest" is not one of "https://ci.acme.example/gate"`},
		"other policy": {func(v *VSA) {
			v.Policy.Digest = map[string]string{"sha256": digest.FromString("weak policy").Encoded()}
		}, "is not one of the accepted"},
		"too old":       {func(v *VSA) { v.TimeVerified = now.Add(-25 * time.Hour).Format(time.RFC3339) }, "more than 24h ago"},
		"in the future": {func(v *VSA) { v.TimeVerified = now.Add(time.Hour).Format(time.RFC3339) }, "in the future"},
		"bad time":      {func(v *VSA) { v.TimeVerified = "yesterday" }, "not an RFC 3339 time"},
	} {
		v := good()
		tc.edit(v)
		b, _ := json.Marshal(v)
		err := checkVSA(&rule, b, model, now)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
	if _, err := NewVSA(&Report{}, VSAOptions{}); err == nil {
		t.Error("a summary without a verifier id was made")
	}
	for name, r := range map[string]VSARule{
		"no verifierIDs":   {PolicyDigests: []string{policy.String()}, MaxAge: "24h"},
		"no policyDigests": {VerifierIDs: []string{"x"}, MaxAge: "24h"},
		"bad digest":       {VerifierIDs: []string{"x"}, PolicyDigests: []string{"sha256:abc"}, MaxAge: "24h"},
		"no maxAge":        {VerifierIDs: []string{"x"}, PolicyDigests: []string{policy.String()}},
	} {
		if _, err := compileVSA(r, "vsa"); err == nil {
			t.Errorf("%s: compiled", name)
		}
	}
}

func descOf(d digest.Digest) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d}
}
