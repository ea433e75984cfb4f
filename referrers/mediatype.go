package referrers

import "fmt"

// Media types, annotations and predicate types of the referrers we write
// and read.
const (
	// BundleMediaType is a Sigstore bundle v0.3: the referrer's
	// artifactType and its one layer's media type.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// EmptyConfigMediaType is the config of a bundle referrer ({}).
	EmptyConfigMediaType = "application/vnd.oci.empty.v1+json"

	// AnnotationBundleContent says what the bundle holds ("dsse-envelope").
	AnnotationBundleContent = "dev.sigstore.bundle.content"
	// AnnotationPredicateType repeats the statement's predicateType so a
	// listing can be filtered without fetching the bundle (not trusted).
	AnnotationPredicateType = "dev.sigstore.bundle.predicateType"
	// AnnotationCreated is when the referrer was made.
	AnnotationCreated = "org.opencontainers.image.created"

	// PayloadTypeInToto is the DSSE payload type of an in-toto statement.
	PayloadTypeInToto = "application/vnd.in-toto+json"
	// StatementV1 and StatementV01 are the in-toto statement types; cosign
	// v3 writes v1 for signatures and v0.1 for attestations.
	StatementV1  = "https://in-toto.io/Statement/v1"
	StatementV01 = "https://in-toto.io/Statement/v0.1"

	// PredicateCosignSign is cosign's signature predicate.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
	// PredicateSLSAProvenance is SLSA provenance v1.
	PredicateSLSAProvenance = "https://slsa.dev/provenance/v1"
	// PredicateModelSigning is the OpenSSF model-signing statement v1.0.
	PredicateModelSigning = "https://model_signing/signature/v1.0"
	// PredicateVSA is a SLSA verification summary.
	PredicateVSA = "https://slsa.dev/verification_summary/v1"
)

// predicateAliases are cosign's short names for --type.
var predicateAliases = map[string]string{
	"slsaprovenance1": PredicateSLSAProvenance,
	"model-signing":   PredicateModelSigning,
	"oms":             PredicateModelSigning,
	"vsa":             PredicateVSA,
	"sign":            PredicateCosignSign,
}

// PredicateType resolves a cosign-style alias (slsaprovenance1,
// model-signing, vsa) to its URI; anything else is returned as it is.
func PredicateType(s string) string {
	if u, ok := predicateAliases[s]; ok {
		return u
	}
	return s
}

// ResolvePredicateType is PredicateType that refuses cosign's aliases for
// predicates this project does not judge: in cosign, "slsaprovenance" (and
// "slsaprovenance02") mean SLSA provenance v0.2, which no rule here checks,
// so accepting the word would make a rule or an attestation mean something
// other than what its writer expected.
func ResolvePredicateType(s string) (string, error) {
	switch s {
	case "slsaprovenance", "slsaprovenance02":
		return "", fmt.Errorf("predicate type %q is SLSA provenance v0.2 in cosign, which is not supported: write slsaprovenance1 (%s)", s, PredicateSLSAProvenance)
	}
	return PredicateType(s), nil
}
