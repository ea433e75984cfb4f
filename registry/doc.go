// Package registry is an embedded OCI 1.1 registry: the CNCF distribution
// registry used as a library, on disk, with the Referrers API added in
// front of it (GET /v2/<name>/referrers/<digest>, artifactType filtering,
// the OCI-Subject header), optional htpasswd basic auth and TLS.
//
// It is what `modelattest registry serve`, `make demo` and the integration
// tests run: a real registry that passes the OCI distribution-spec
// conformance suite, not a test double.
package registry
