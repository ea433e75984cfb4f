package referrers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"
)

// VerifierID is modelattest's own URI; a deployment names itself with
// VSAOptions.VerifierID (verify --verifier-id), which a consumer's rule
// lists among its accepted verifierIDs.
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

// VSAOptions say who made a summary and under which policy.
type VSAOptions struct {
	// VerifierID identifies the verifier (a URI naming this deployment,
	// e.g. https://ci.acme.example/model-gate). Required: a consumer
	// accepts summaries by verifier id.
	VerifierID string
	// PolicyURI says where the policy lives (optional).
	PolicyURI string
}

// VSA results.
const (
	VSAPassed = "PASSED"
	VSAFailed = "FAILED"
)

// NewVSA summarises a report; every referrer that verified is an input
// attestation. A failed report gives a FAILED summary, for the audit trail:
// a consumer's rule counts only PASSED ones.
func NewVSA(rep *Report, opts VSAOptions) (VSA, error) {
	var v VSA
	if opts.VerifierID == "" {
		return v, errors.New("a verification summary needs a verifier id (verify --verifier-id URI)")
	}
	v.Verifier.ID = opts.VerifierID
	v.TimeVerified = rep.VerifiedAt.UTC().Format(time.RFC3339)
	v.ResourceURI = "oci://" + rep.Repository + "@" + rep.Model.Digest.String()
	v.Policy.URI = opts.PolicyURI
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
	v.VerificationResult = VSAFailed
	if rep.Passed {
		v.VerificationResult = VSAPassed
	}
	v.VerifiedLevels = []string{}
	v.SLSAVersion = "1.0"
	return v, nil
}

// AttachVSA signs the summary of rep and stores it as a referrer of the
// model.
func AttachVSA(ctx context.Context, dst orasgo.Target, model ocispec.Descriptor, s *Signer, rep *Report, opts VSAOptions) (ocispec.Descriptor, error) {
	v, err := NewVSA(rep, opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return Attest(ctx, dst, model, s, PredicateVSA, b, AttachOptions{})
}

// checkVSA applies a rule's summary constraints to a verified predicate
// whose statement already names the model.
func checkVSA(r *VSARule, predicate json.RawMessage, model digest.Digest, now time.Time) error {
	var v VSA
	if err := json.Unmarshal(predicate, &v); err != nil {
		return fmt.Errorf("verification summary: %w", err)
	}
	if v.VerificationResult != VSAPassed {
		return fmt.Errorf("verification result is %q, want %s", v.VerificationResult, VSAPassed)
	}
	// The repository may differ (a copy, an air gap); the digest may not.
	i := strings.LastIndex(v.ResourceURI, "@")
	if i < 0 || digest.Digest(v.ResourceURI[i+1:]) != model {
		return fmt.Errorf("resourceUri %q does not name the model's digest %s", v.ResourceURI, model)
	}
	if !contains(r.VerifierIDs, v.Verifier.ID) {
		return fmt.Errorf("verifier id %q is not one of %s", v.Verifier.ID, quoteList(r.VerifierIDs))
	}
	accepted := false
	for alg, hex := range v.Policy.Digest {
		accepted = accepted || contains(r.PolicyDigests, alg+":"+hex)
	}
	if !accepted {
		return fmt.Errorf("policy digest %s is not one of the accepted %s", digestList(v.Policy.Digest), strings.Join(r.PolicyDigests, ", "))
	}
	t, err := time.Parse(time.RFC3339, v.TimeVerified)
	if err != nil {
		return fmt.Errorf("timeVerified %q: not an RFC 3339 time", v.TimeVerified)
	}
	if t.After(now.Add(5 * time.Minute)) {
		return fmt.Errorf("timeVerified %s is in the future", v.TimeVerified)
	}
	if now.Sub(t) > r.maxAge {
		return fmt.Errorf("verified %s, more than %s ago", v.TimeVerified, r.MaxAge)
	}
	return nil
}
