package referrers

import (
	"fmt"
	"os"

	"github.com/sigstore/cosign/v2/pkg/cosign"
)

// GenerateKeyPair writes a cosign-compatible key pair: PREFIX.key (ECDSA
// P-256, encrypted with the password, as cosign generate-key-pair writes
// it) and PREFIX.pub. Existing files are not overwritten.
func GenerateKeyPair(prefix string, password []byte) (keyPath, pubPath string, err error) {
	keyPath, pubPath = prefix+".key", prefix+".pub"
	for _, p := range []string{keyPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return "", "", fmt.Errorf("%s exists; not overwriting it", p)
		}
	}
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	if err := os.WriteFile(keyPath, kb.PrivateBytes, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pubPath, kb.PublicBytes, 0o644); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, nil
}
