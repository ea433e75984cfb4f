package referrers

// The KMS providers sigstore knows, compiled in so that --key awskms://…,
// gcpkms://…, azurekms://… and hashivault://… work for signing and for
// trusted keys.
import (
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)
