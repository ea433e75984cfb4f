// Package pemcert reads the certificates of PEM text, for the packages that
// load trust roots and chains (referrers, runtime), each of which keeps its
// own rule for what else a file may hold.
package pemcert

import (
	"crypto/x509"
	"encoding/pem"
)

// Parse returns the certificate of every CERTIFICATE block of raw, in
// order, skipping blocks of other types, and what follows the last PEM
// block (all of raw when it holds none). A CERTIFICATE block that does not
// parse is an error.
func Parse(raw []byte) (certs []*x509.Certificate, rest []byte, err error) {
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			return certs, raw, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, raw, err
		}
		certs = append(certs, c)
	}
}
