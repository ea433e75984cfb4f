// Package oras moves model artifacts between OCI registries and OCI image
// layouts with oras-go: targets with credentials, streaming push that hashes
// each file while it uploads, verified pull into a staging area, copy with
// referrers, and referrer listing with the tag-schema fallback.
//
// Every function takes the oras-go target interfaces, so a remote
// repository and an OCI layout are interchangeable.
package oras
