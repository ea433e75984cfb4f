// Package referrers makes and checks the signatures and attestations of a
// model, stored as OCI 1.1 referrers exactly as cosign v3 stores them: one
// Sigstore bundle v0.3 (a DSSE envelope over an in-toto Statement whose
// subject is the model's manifest digest) as the single layer of a manifest
// whose subject is the model.
//
// Signing only ever signs a manifest digest: its cost does not depend on the
// model's size, and no model blob is fetched.
package referrers
