package main

// The KMS providers sigstore knows. The library registers none (that is a
// program's choice: each pulls in a cloud SDK); this program compiles all
// four in so that --key and trust anchors accept awskms://, gcpkms://,
// azurekms:// and hashivault:// URIs.
import (
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
)
