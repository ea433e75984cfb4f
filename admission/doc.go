// Package admission is a Kubernetes admission webhook that admits only
// verified models: image volumes, in-scope container images and KServe
// `oci://` storage URIs are resolved to a digest once and checked with
// referrers.VerifyModel against the same policy file `modelattest verify`
// reads. A failed enforce rule denies with the model, the rule and the
// first failing requirement; warn allows with admission warnings; audit
// allows with an audit annotation. The mutating endpoint pins each verified
// tag to its digest, so the node pulls exactly what was checked.
//
// It fails closed: a review has a time budget, and a registry that does not
// answer within it is a deny that says "registry unreachable", never an
// allow. Verified decisions are cached by (repository, digest, policy
// digest) for no longer than the evidence stays valid.
//
// The package also writes the webhook configurations (with CEL
// matchConditions generated from the policy's admission scope, so only
// objects that can hold a model reach the webhook) and the certificates
// the API server needs to call it. The CLI (`modelattest admission serve |
// manifests | certs`) only wires it.
package admission
