package main

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature/kms"
)

// TestKMSProvidersRegistered: the CLI registers a provider for every KMS
// scheme it documents, and a URI of each scheme reaches that provider (a
// malformed one is refused by the provider's own parser, never as "no
// provider found").
func TestKMSProvidersRegistered(t *testing.T) {
	for scheme, malformed := range map[string]string{
		"awskms://":     "awskms://",
		"gcpkms://":     "gcpkms://not-a-key-path",
		"azurekms://":   "azurekms://",
		"hashivault://": "hashivault://",
	} {
		t.Run(scheme, func(t *testing.T) {
			if !slices.Contains(kms.SupportedProviders(), scheme) {
				t.Fatalf("no provider registered for %s (have %v)", scheme, kms.SupportedProviders())
			}
			_, err := kms.Get(context.Background(), malformed, 0)
			var missing *kms.ProviderNotFoundError
			if err == nil || errors.As(err, &missing) {
				t.Fatalf("%s: err = %v, want the provider's own refusal", malformed, err)
			}
		})
	}
}
