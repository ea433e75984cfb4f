package referrers

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"
	orasgo "oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/modelattest/modelattest/oras"
)

// Cosign v2's default ("legacy") signatures: a manifest tagged
// sha256-<hex>.sig whose layers are simple-signing payloads, each signed in
// an annotation.
const (
	legacySimpleSigning    = "application/vnd.dev.cosign.simplesigning.v1+json"
	legacySigAnnotation    = "dev.cosignproject.cosign/signature"
	legacyCosignSignedType = "cosign container image signature"
	maxLegacyPayload       = 64 << 10
)

// LegacySignatureTag is the tag cosign v2 stores a model's signatures under.
func LegacySignatureTag(model digest.Digest) string {
	return model.Algorithm().String() + "-" + model.Encoded() + ".sig"
}

// legacySignatures finds cosign v2 .sig tag signatures of the model and
// records those a key anchor verifies as findings that count as
// signatures. Nothing is trusted from the tag: each payload must be signed
// by a trusted key and name the model's digest. Only a tag that is not
// found means there are none; any other error resolving it is returned.
func legacySignatures(ctx context.Context, src orasgo.ReadOnlyGraphTarget, model ocispec.Descriptor, p *Policy, anchors []string, rep *Report) error {
	desc, err := src.Resolve(ctx, LegacySignatureTag(model.Digest))
	if errors.Is(err, errdef.ErrNotFound) {
		return nil // none: the common case
	}
	if err != nil {
		return fmt.Errorf("cosign signature tag of %s: %w", model.Digest, err)
	}
	f := Finding{Digest: desc.Digest, Subject: model.Digest, Depth: 1, ArtifactType: legacySimpleSigning,
		PredicateType: PredicateCosignSign, Verdict: VerdictRejected}
	defer func() { rep.Referrers = append(rep.Referrers, f) }()
	m, _, err := oras.FetchManifest(ctx, src, desc)
	if err != nil {
		f.Reason = err.Error()
		return nil
	}
	var reasons []string
	for _, l := range m.Layers {
		if l.MediaType != legacySimpleSigning || l.Size > maxLegacyPayload {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(l.Annotations[legacySigAnnotation])
		if err != nil || len(sig) == 0 {
			continue
		}
		payload, err := content.FetchAll(ctx, src, l)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		var ss struct {
			Critical struct {
				Image struct {
					Digest string `json:"docker-manifest-digest"`
				} `json:"image"`
				Type string `json:"type"`
			} `json:"critical"`
		}
		if err := json.Unmarshal(payload, &ss); err != nil || ss.Critical.Type != legacyCosignSignedType {
			reasons = append(reasons, "not a cosign simple-signing payload")
			continue
		}
		if ss.Critical.Image.Digest != model.Digest.String() {
			reasons = append(reasons, fmt.Sprintf("payload names %s, not the model", ss.Critical.Image.Digest))
			continue
		}
		for _, name := range anchors {
			v := p.verifiers[name]
			if v.pub == nil {
				continue // legacy signatures are key-only here
			}
			sv, err := signature.LoadDefaultVerifier(v.pub)
			if err != nil {
				continue
			}
			if sv.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil {
				f.verifiedBy(name, keyFingerprint(v.pub))
			}
		}
	}
	if len(f.VerifiedBy) > 0 {
		f.Verdict, f.Reason = VerdictLegacy, ""
		f.statement = &Statement{Type: "cosign/simple-signing", PredicateType: PredicateCosignSign}
		return nil
	}
	if len(reasons) > 0 {
		f.Reason = reasons[0]
	} else {
		f.Reason = "no payload verified against a trusted key"
	}
	f.Verdict = VerdictUntrusted
	return nil
}
