package referrers

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature/kms"
)

// kmsProviders names, for each KMS URI scheme, the package a program
// imports (blank) to register sigstore's provider for it. The library
// imports none: each brings a cloud SDK, and which ones to carry is the
// program's choice.
var kmsProviders = map[string]string{
	"awskms://":     "github.com/sigstore/sigstore/pkg/signature/kms/aws",
	"gcpkms://":     "github.com/sigstore/sigstore/pkg/signature/kms/gcp",
	"azurekms://":   "github.com/sigstore/sigstore/pkg/signature/kms/azure",
	"hashivault://": "github.com/sigstore/sigstore/pkg/signature/kms/hashivault",
}

// kmsSignerVerifier opens the KMS key ref through the provider the program
// registered for its scheme. Without one, the error names the import that
// would register it.
func kmsSignerVerifier(ctx context.Context, ref string) (kms.SignerVerifier, error) {
	sv, err := kms.Get(ctx, ref, crypto.SHA256)
	if err == nil {
		return sv, nil
	}
	var missing *kms.ProviderNotFoundError
	if errors.As(err, &missing) {
		for scheme, pkg := range kmsProviders {
			if strings.HasPrefix(ref, scheme) {
				return nil, fmt.Errorf("no KMS provider registered for %s: the program must import _ %q: %w", scheme, pkg, err)
			}
		}
	}
	return nil, err
}
