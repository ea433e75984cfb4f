// Package runtime proves at run time which model a confidential VM loaded.
//
// A guest computes a binding (ReportData) over the model's manifest
// digest, the digest of the policy it was verified under, a relying
// party's nonce and, when a key is to be released to it, the SHA-256 of an
// ephemeral public key; it asks its TEE (AMD SEV-SNP, Intel TDX) for a
// report over those 64 bytes and writes the report with its certificate
// chain into an Evidence document. Verify checks the evidence offline: the
// chain to trusted roots, the TCB floor, the debug and migration bits, the
// launch measurement, the binding, the nonce, and, through a caller's
// callback, that the model digest still satisfies the policy.
//
// The simulated-snp provider is INSECURE: it signs with a chain it makes
// itself, for demos and tests. docs/RUNTIME.md is the full description,
// the binding's encoding byte by byte and what is not tested.
//
// Dependencies that act on import: github.com/google/go-sev-guest's client
// package registers Go flags on flag.CommandLine (sev_guest_device_path,
// self_throttle_*, default_vmpl) and its verify/trust package parses its
// embedded AMD roots in an init function. This package imports client (for
// the sev-guest provider) and trust; it never imports go-sev-guest's verify
// or testing packages (those register more flags; testing is for _test
// files only). go-tdx-guest's verify package (imported for TDX) calls
// github.com/google/logger's Init with stdout in its init function: the
// first Init wins process-wide. TDX verification therefore requires pinned
// roots, the only case in which it would log on our path.
package runtime
