package referrers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature/kms"
	// This test program, like any program using the library, chooses its
	// KMS providers: it registers hashivault:// and nothing else.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/referrers"
)

// TestKMSSigner signs through sigstore's KMS provider for hashivault://
// (registered by this test program), against a stand-in transit engine,
// and verifies with the KMS public key.
func TestKMSSigner(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var signs atomic.Int32
	srv := regtest.VaultTransit(t, key, &signs)
	t.Setenv("VAULT_ADDR", srv.URL)
	t.Setenv("VAULT_TOKEN", "test-token")
	ctx := context.Background()

	s, err := referrers.LoadSigner(ctx, "hashivault://model-release", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, subject, bundle := signedModel(t, s)
	if signs.Load() != 1 {
		t.Fatalf("the KMS signed %d times, want 1", signs.Load())
	}
	for name, v := range map[string]func() (*referrers.Verifier, error){
		"KMS URI": func() (*referrers.Verifier, error) {
			return referrers.LoadKeyVerifier(ctx, "kms", "hashivault://model-release")
		},
		"public key": func() (*referrers.Verifier, error) { return referrers.NewKeyVerifier("pub", key.Public()) },
	} {
		ver, err := v()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ver.Verify(bundle, subject.Digest); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := referrers.LoadSigner(ctx, "hashivault://no-such-key", nil); !errors.Is(err, referrers.ErrKey) {
		t.Errorf("missing key: err = %v", err)
	}
}

// TestKMSProviderNotRegistered: a scheme whose provider the program did
// not import is refused with an error that names the import to add, and
// keeps sigstore's typed error in the chain.
func TestKMSProviderNotRegistered(t *testing.T) {
	ctx := context.Background()
	for ref, pkg := range map[string]string{
		"awskms:///arn:aws:kms:us-east-1:111122223333:key/1234":   "signature/kms/aws",
		"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k": "signature/kms/gcp",
		"azurekms://vault.vault.azure.net/key":                    "signature/kms/azure",
	} {
		for what, load := range map[string]func() error{
			"signer":   func() error { _, err := referrers.LoadSigner(ctx, ref, nil); return err },
			"verifier": func() error { _, err := referrers.LoadKeyVerifier(ctx, "k", ref); return err },
		} {
			err := load()
			var missing *kms.ProviderNotFoundError
			if !errors.As(err, &missing) || !strings.Contains(err.Error(), pkg) {
				t.Errorf("%s %s: err = %v", what, ref, err)
			}
		}
	}
	if _, err := referrers.LoadSigner(ctx, "nosuchkms://x", nil); !errors.Is(err, referrers.ErrKey) {
		t.Errorf("unknown scheme: err = %v", err)
	}
}

// TestLibraryImportsNoKMSProvider: the library packages register no KMS
// provider and carry no cloud SDK; that is left to the program.
func TestLibraryImportsNoKMSProvider(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/modelattest/modelattest/referrers").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, d := range deps {
		for _, bad := range []string{
			"github.com/sigstore/sigstore/pkg/signature/kms/",
			"github.com/aws/aws-sdk-go",
			"cloud.google.com/go/kms",
			"github.com/Azure/azure-sdk-for-go",
			"github.com/hashicorp/vault",
		} {
			if strings.HasPrefix(d, bad) && !strings.HasPrefix(d, "github.com/sigstore/sigstore/pkg/signature/kms/cliplugin") {
				t.Errorf("referrers depends on %s", d)
			}
		}
	}
	t.Logf("referrers: %d packages", len(deps))
}
