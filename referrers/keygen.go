package referrers

import (
	"fmt"
	"os"
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
	priv, pub, err := newCosignKeyPair(password)
	if err != nil {
		return "", "", fmt.Errorf("generate key pair: %w", err)
	}
	if err := os.WriteFile(keyPath, priv, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return "", "", err
	}
	return keyPath, pubPath, nil
}
