package referrers

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/registry"
	notarysigner "github.com/notaryproject/notation-go/signer"
	"github.com/notaryproject/tspclient-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigstoresig "github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"
	orasgo "oras.land/oras-go/v2"
)

// NotationSigner makes Notary Project signatures (the notary.x509 scheme):
// a local RSA or ECDSA key, or an ECDSA key behind a KMS URI, with the
// certificate chain of that key.
type NotationSigner struct {
	signer notation.Signer
	// Identity is the signing certificate's subject.
	Identity string
}

// NewNotationSigner signs with a private key (*ecdsa.PrivateKey or
// *rsa.PrivateKey) and its chain, leaf first, ending at the root.
func NewNotationSigner(key crypto.PrivateKey, chain []*x509.Certificate) (*NotationSigner, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: a Notary Project signature needs the key's certificate chain", ErrKey)
	}
	if k, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		if pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && !pub.Equal(chain[0].PublicKey) {
			return nil, fmt.Errorf("%w: the certificate %q is not for this key", ErrKey, chain[0].Subject)
		}
	}
	s, err := notarysigner.NewGenericSigner(key, chain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return &NotationSigner{signer: s, Identity: chain[0].Subject.String()}, nil
}

// LoadNotationSigner loads a key as LoadSigner does (a PEM or cosign key
// file, or a KMS URI) for Notary Project signing with the PEM chain
// (leaf first). Through a KMS only ECDSA keys are used: notation's RSA
// scheme is RSASSA-PSS, which the KMS signers here do not make.
func LoadNotationSigner(ctx context.Context, ref string, chainPEM []byte, password PasswordFunc) (*NotationSigner, error) {
	chain, err := parseCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate chain: %w", ErrKey, err)
	}
	ks, err := signature.ExtractKeySpec(chain[0])
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, ref, err)
	}
	var sv sigstoresig.SignerVerifier
	if !strings.Contains(ref, "://") {
		raw, err := os.ReadFile(ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		if b, _ := pem.Decode(raw); b != nil && (b.Type == "PRIVATE KEY" || b.Type == "EC PRIVATE KEY" || b.Type == "RSA PRIVATE KEY") {
			priv, err := cryptoutils.UnmarshalPEMToPrivateKey(raw, cryptoutils.SkipPassword)
			if err != nil {
				return nil, fmt.Errorf("%w %s: %w", ErrKey, ref, err)
			}
			return NewNotationSigner(priv, chain)
		}
		// A cosign key: signed through its signer, as a KMS key is.
		if sv, err = loadKeyFile(ref, password); err != nil {
			return nil, err
		}
		if ks.Type != signature.KeyTypeEC || ks.SignatureAlgorithm().Hash() != crypto.SHA256 {
			return nil, fmt.Errorf("%w %s: a cosign key signs Notary Project signatures only as ECDSA P-256", ErrKey, ref)
		}
	}
	if sv == nil {
		if ks.Type != signature.KeyTypeEC {
			return nil, fmt.Errorf("%w %s: only ECDSA keys sign Notary Project signatures through a KMS", ErrKey, ref)
		}
		if sv, err = kms.Get(ctx, ref, ks.SignatureAlgorithm().Hash()); err != nil {
			return nil, fmt.Errorf("%w %s: %w", ErrKey, ref, err)
		}
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, ref, err)
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || !k.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("%w %s: the certificate %q is not for this key", ErrKey, ref, chain[0].Subject)
	}
	return &NotationSigner{signer: &remoteNotarySigner{base: &kmsNotarySigner{sv: sv, chain: chain, spec: ks, ctx: ctx}},
		Identity: chain[0].Subject.String()}, nil
}

// kmsNotarySigner is a notation-core-go signature.Signer over a KMS key.
type kmsNotarySigner struct {
	sv    sigstoresig.SignerVerifier
	chain []*x509.Certificate
	spec  signature.KeySpec
	ctx   context.Context
}

func (k *kmsNotarySigner) KeySpec() (signature.KeySpec, error) { return k.spec, nil }

// Sign returns the raw r||s signature COSE and JWS both carry; KMS
// signers return ASN.1 DER.
func (k *kmsNotarySigner) Sign(payload []byte) ([]byte, []*x509.Certificate, error) {
	der, err := k.sv.SignMessage(bytes.NewReader(payload), sigstoresigOptions(k.ctx)...)
	if err != nil {
		return nil, nil, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
		return nil, nil, fmt.Errorf("KMS signature is not ASN.1 ECDSA: %w", err)
	}
	n := (k.spec.Size + 7) / 8
	raw := make([]byte, 2*n)
	rs.R.FillBytes(raw[:n])
	rs.S.FillBytes(raw[n:])
	return raw, k.chain, nil
}

// remoteNotarySigner builds the envelope around a signature.Signer exactly
// as notation-go's generic signer does around a local key.
type remoteNotarySigner struct {
	base signature.Signer
}

func (s *remoteNotarySigner) Sign(ctx context.Context, desc ocispec.Descriptor, opts notation.SignerSignOptions) ([]byte, *signature.SignerInfo, error) {
	payload, err := notaryPayload(desc)
	if err != nil {
		return nil, nil, err
	}
	req := &signature.SignRequest{
		Payload:                signature.Payload{ContentType: notaryPayloadType, Content: payload},
		Signer:                 s.base,
		SigningTime:            time.Now(),
		SigningScheme:          signature.SigningSchemeX509,
		SigningAgent:           opts.SigningAgent,
		Timestamper:            opts.Timestamper,
		TSARootCAs:             opts.TSARootCAs,
		TSARevocationValidator: opts.TSARevocationValidator,
	}
	if opts.ExpiryDuration != 0 {
		req.Expiry = req.SigningTime.Add(opts.ExpiryDuration)
	}
	env, err := signature.NewEnvelope(opts.SignatureMediaType)
	if err != nil {
		return nil, nil, err
	}
	sig, err := env.Sign(req.WithContext(ctx))
	if err != nil {
		return nil, nil, err
	}
	c, err := env.Verify()
	if err != nil {
		return nil, nil, fmt.Errorf("the signature made does not verify: %w", err)
	}
	return sig, &c.SignerInfo, nil
}

// NotationSignOptions are the optional settings of SignNotation. The zero
// value makes a COSE envelope with no timestamp and no expiry.
type NotationSignOptions struct {
	// EnvelopeType is NotationEnvelopeCOSE (zero) or NotationEnvelopeJWS.
	EnvelopeType string
	// TimestampURL is an RFC 3161 timestamp authority to countersign
	// with; TSARoots must then hold its root.
	TimestampURL string
	// TSARoots are the roots the timestamp's chain is checked against
	// before the signature is stored.
	TSARoots []*x509.Certificate
	// HTTPClient reaches the timestamp authority (nil: a client with a
	// 30-second timeout).
	HTTPClient *http.Client
	// Expiry, when set, makes the signature expire that long after signing.
	Expiry time.Duration
	// SigningAgent names the software in the envelope (zero: modelattest).
	SigningAgent string
}

// NotationSignResult is what SignNotation stored.
type NotationSignResult struct {
	// Referrer is the signature manifest.
	Referrer ocispec.Descriptor
	// Envelope is the envelope layer.
	Envelope ocispec.Descriptor
	// Format is FormatNotationCOSE or FormatNotationJWS.
	Format string
}

// SignNotation signs the model manifest subject (a descriptor resolved
// once by the caller) with a Notary Project signature and stores it as a
// referrer exactly as `notation sign` does: notation-go's own push (the
// envelope as the one layer, config application/vnd.cncf.notary.signature,
// the x509 chain thumbprint and created annotations), so `notation verify`,
// `notation list` and `oras discover` read it.
func SignNotation(ctx context.Context, dst orasgo.GraphTarget, subject ocispec.Descriptor, s *NotationSigner, opts NotationSignOptions) (*NotationSignResult, error) {
	mt := opts.EnvelopeType
	if mt == "" {
		mt = NotationEnvelopeCOSE
	}
	if mt != NotationEnvelopeCOSE && mt != NotationEnvelopeJWS {
		return nil, fmt.Errorf("notation: envelope type %q: want %s or %s", mt, NotationEnvelopeCOSE, NotationEnvelopeJWS)
	}
	agent := opts.SigningAgent
	if agent == "" {
		agent = "modelattest"
	}
	so := notation.SignerSignOptions{SignatureMediaType: mt, ExpiryDuration: opts.Expiry, SigningAgent: agent}
	if opts.TimestampURL != "" {
		if len(opts.TSARoots) == 0 {
			return nil, errors.New("notation: a timestamp URL needs the TSA's root certificate")
		}
		hc := opts.HTTPClient
		if hc == nil {
			hc = &http.Client{Timeout: 30 * time.Second}
		}
		ts, err := tspclient.NewHTTPTimestamper(hc, opts.TimestampURL)
		if err != nil {
			return nil, fmt.Errorf("notation: timestamp URL: %w", err)
		}
		pool := x509.NewCertPool()
		for _, c := range opts.TSARoots {
			pool.AddCert(c)
		}
		so.Timestamper, so.TSARootCAs = ts, pool
		so.TSARevocationValidator = (&offlineRevocation{}).forPurpose(true)
	}
	target := ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	sig, info, err := s.signer.Sign(ctx, target, so)
	if err != nil {
		return nil, fmt.Errorf("notation sign: %w", err)
	}
	ann, err := notaryAnnotations(info)
	if err != nil {
		return nil, err
	}
	blob, manifest, err := registry.NewRepository(dst).PushSignature(ctx, mt, sig, target, ann)
	if err != nil {
		return nil, fmt.Errorf("push Notary Project signature: %w", err)
	}
	format := FormatNotationCOSE
	if mt == NotationEnvelopeJWS {
		format = FormatNotationJWS
	}
	return &NotationSignResult{Referrer: manifest, Envelope: blob, Format: format}, nil
}

func sigstoresigOptions(ctx context.Context) []sigstoresig.SignOption {
	if ctx == nil {
		return nil
	}
	return []sigstoresig.SignOption{options.WithContext(ctx)}
}

// notaryPayload is the signed payload: the target descriptor, as
// notation-go writes it.
func notaryPayload(desc ocispec.Descriptor) ([]byte, error) {
	return json.Marshal(struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}{ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Annotations: desc.Annotations}})
}

// notaryAnnotations are the signature manifest's annotations as notation
// writes them: the chain's SHA-256 thumbprints and the signing time.
func notaryAnnotations(info *signature.SignerInfo) (map[string]string, error) {
	var thumbs []string
	for _, c := range info.CertificateChain {
		sum := sha256.Sum256(c.Raw)
		thumbs = append(thumbs, hex.EncodeToString(sum[:]))
	}
	b, err := json.Marshal(thumbs)
	if err != nil {
		return nil, err
	}
	t := info.SignedAttributes.SigningTime
	if info.SignedAttributes.SigningScheme == signature.SigningSchemeX509SigningAuthority {
		if t, err = info.AuthenticSigningTime(); err != nil {
			return nil, err
		}
	}
	return map[string]string{AnnotationNotaryThumbprints: string(b), ocispec.AnnotationCreated: t.Format(time.RFC3339)}, nil
}
