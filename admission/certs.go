package admission

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"time"

	"sigs.k8s.io/yaml"
)

// CertOptions describe the serving certificate. Zero fields take the
// defaults given with each.
type CertOptions struct {
	// Service and Namespace name the webhook's Service (defaults
	// "modelattest-admission", "modelattest-system"); the certificate
	// covers service, service.namespace, service.namespace.svc and
	// service.namespace.svc.cluster.local.
	Service, Namespace string
	// DNSNames and IPs are added (a webhook outside the cluster).
	DNSNames []string
	IPs      []net.IP
	// Validity of both certificates (default one year).
	Validity time.Duration
	// Now is when they start (zero: now).
	Now time.Time
}

// Certs is a new CA and a serving certificate it signed, PEM encoded.
type Certs struct {
	CA, Cert, Key []byte
}

// GenerateCerts makes a CA and a serving certificate for the webhook
// (ECDSA P-256). The CA's key is not kept: rotation makes a new pair.
func GenerateCerts(o CertOptions) (*Certs, error) {
	if o.Service == "" {
		o.Service = "modelattest-admission"
	}
	if o.Namespace == "" {
		o.Namespace = "modelattest-system"
	}
	if o.Validity <= 0 {
		o.Validity = 365 * 24 * time.Hour
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "modelattest-admission-ca"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(o.Validity),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	svc := o.Service + "." + o.Namespace + ".svc"
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: svc},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(o.Validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    append([]string{o.Service, o.Service + "." + o.Namespace, svc, svc + ".cluster.local"}, o.DNSNames...),
		IPAddresses: o.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Certs{
		CA:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// PatchCABundle sets clientConfig.caBundle of every webhook of every
// Validating- or MutatingWebhookConfiguration in a multi-document YAML
// stream; other documents pass through unchanged. It fails when there is
// no webhook to patch.
func PatchCABundle(manifests, caPEM []byte) ([]byte, error) {
	if blk, _ := pem.Decode(caPEM); blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("CA bundle: no PEM certificate")
	}
	docs := bytes.Split(manifests, []byte("\n---"))
	patched := 0
	for i, d := range docs {
		var obj map[string]any
		if err := yaml.Unmarshal(d, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if k, _ := obj["kind"].(string); k != "ValidatingWebhookConfiguration" && k != "MutatingWebhookConfiguration" {
			continue
		}
		hooks, _ := obj["webhooks"].([]any)
		for _, h := range hooks {
			hm, ok := h.(map[string]any)
			if !ok {
				continue
			}
			cc, _ := hm["clientConfig"].(map[string]any)
			if cc == nil {
				cc = map[string]any{}
				hm["clientConfig"] = cc
			}
			cc["caBundle"] = base64.StdEncoding.EncodeToString(caPEM)
			patched++
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b = append([]byte("\n"), b...)
		}
		docs[i] = bytes.TrimRight(b, "\n")
	}
	if patched == 0 {
		return nil, fmt.Errorf("no webhook configuration to patch")
	}
	return append(bytes.Join(docs, []byte("\n---")), '\n'), nil
}
