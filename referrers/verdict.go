package referrers

// Verdict is what verification made of one referrer.
type Verdict string

// The verdicts of a Finding.
const (
	// VerdictVerified: a trust anchor of the rule verified the signature,
	// and the signed statement names its subject.
	VerdictVerified Verdict = "verified"
	// VerdictUntrusted: a well-formed signature that no trust anchor of the
	// rule verified.
	VerdictUntrusted Verdict = "untrusted"
	// VerdictRejected: not a readable signature (malformed, wrong subject,
	// too big, …).
	VerdictRejected Verdict = "rejected"
	// VerdictLegacy: a cosign v2 .sig tag signature a trusted key verified;
	// it counts as a signature.
	VerdictLegacy Verdict = "legacy"
)
