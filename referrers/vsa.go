package referrers

import (
	"context"
	"encoding/json"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
)

// VerifierID identifies modelattest as the verifier in a summary.
const VerifierID = "https://github.com/modelattest/modelattest"

// VSA is a SLSA verification summary (https://slsa.dev/verification_summary/v1):
// one signed statement that the model passed (or failed) a policy, naming
// the policy's digest and every attestation that counted, so a later
// consumer can trust one summary instead of re-verifying the graph.
type VSA struct {
	Verifier struct {
		ID string `json:"id"`
	} `json:"verifier"`
	TimeVerified string `json:"timeVerified"`
	ResourceURI  string `json:"resourceUri"`
	Policy       struct {
		URI    string            `json:"uri,omitempty"`
		Digest map[string]string `json:"digest"`
	} `json:"policy"`
	InputAttestations  []VSAInput `json:"inputAttestations"`
	VerificationResult string     `json:"verificationResult"`
	VerifiedLevels     []string   `json:"verifiedLevels"`
	SLSAVersion        string     `json:"slsaVersion"`
}

// VSAInput names one attestation that counted.
type VSAInput struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

// NewVSA summarises a report. policyURI names where the policy lives
// (optional); every referrer that verified is an input attestation.
func NewVSA(rep *Report, policyURI string) VSA {
	var v VSA
	v.Verifier.ID = VerifierID
	v.TimeVerified = rep.VerifiedAt.UTC().Format(time.RFC3339)
	v.ResourceURI = "oci://" + rep.Repository + "@" + rep.Model.Digest.String()
	v.Policy.URI = policyURI
	v.Policy.Digest = map[string]string{rep.Policy.Algorithm().String(): rep.Policy.Encoded()}
	v.InputAttestations = []VSAInput{}
	for _, f := range rep.Referrers {
		if f.Verdict == VerdictVerified || f.Verdict == VerdictLegacy {
			v.InputAttestations = append(v.InputAttestations, VSAInput{
				URI:    "oci://" + rep.Repository + "@" + f.Digest.String(),
				Digest: map[string]string{f.Digest.Algorithm().String(): f.Digest.Encoded()},
			})
		}
	}
	v.VerificationResult = "FAILED"
	if rep.Passed {
		v.VerificationResult = "PASSED"
	}
	v.VerifiedLevels = []string{}
	v.SLSAVersion = "1.0"
	return v
}

// AttachVSA signs the summary of rep and stores it as a referrer of the
// model.
func AttachVSA(ctx context.Context, dst orasgo.Target, model ocispec.Descriptor, s *Signer, rep *Report, policyURI string) (ocispec.Descriptor, error) {
	b, err := json.Marshal(NewVSA(rep, policyURI))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return Attest(ctx, dst, model, s, PredicateVSA, b, AttachOptions{})
}
