package regtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Sigstore is an in-process keyless signing service for tests, with no
// network: an OIDC identity provider that issues ES256 tokens, a Fulcio
// stand-in speaking /api/v2/signingCert (it checks the token and the proof
// of possession, and certifies with its own root and intermediate), and a
// Rekor stand-in speaking POST /api/v1/log/entries backed by sigstore-go's
// virtual transparency log.
type Sigstore struct {
	FulcioURL, RekorURL string
	// Material trusts the Fulcio CA and the log.
	Material root.TrustedMaterial
	// TrustedRootJSON is the same as a trusted_root.json.
	TrustedRootJSON []byte
	idp             *ecdsa.PrivateKey
}

// NewSigstore starts the stand-ins; they stop with the test.
func NewSigstore(t testing.TB) *Sigstore {
	t.Helper()
	idp, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	fsrv, fca := fulcio(t, &idp.PublicKey)
	rsrv := rekor(t, vs)
	logs := vs.RekorLogs()
	for id, l := range logs {
		// The virtual log keeps its ID as hex text; a trusted root holds
		// the raw key ID, and keys its logs by the hex of it.
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		l.ID = raw
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fca}, nil, nil, logs)
	if err != nil {
		t.Fatal(err)
	}
	js, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return &Sigstore{FulcioURL: fsrv.URL, RekorURL: rsrv.URL, Material: tr, TrustedRootJSON: js, idp: idp}
}

// Token is an identity token for email from the test identity provider.
func (s *Sigstore) Token(t testing.TB, email string) string { return OIDCToken(t, s.idp, email) }

// ForeignToken is a token for email signed by an identity provider Fulcio
// does not trust.
func ForeignToken(t testing.TB, email string) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return OIDCToken(t, k, email)
}

// OtherFulcioCA is a certificate authority nobody should trust.
func OtherFulcioCA(t testing.TB) root.CertificateAuthority {
	idp, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ca := fulcio(t, &idp.PublicKey)
	return ca
}

const (
	TestIssuer   = "https://oidc.acme.example"
	TestIdentity = "ml-release@acme.example"
)

// oidcToken makes an ES256 JWT from the test identity provider.
func OIDCToken(t testing.TB, key *ecdsa.PrivateKey, email string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"ES256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"iss": TestIssuer, "sub": email, "email": email, "email_verified": true,
		"aud": "sigstore", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	signed := header + "." + enc(claims)
	h := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + enc(sig)
}

// checkToken verifies a test JWT the way Fulcio would, and returns its email.
func checkToken(idp *ecdsa.PublicKey, tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("malformed token")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return "", errors.New("bad token signature")
	}
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(idp, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return "", errors.New("token not signed by the identity provider")
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Iss, Email string }
	json.Unmarshal(b, &c)
	if c.Iss != TestIssuer {
		return "", errors.New("unknown issuer")
	}
	return c.Email, nil
}

// pubOnly lets the CA helper certify a key it only has the public half of.
type pubOnly struct{ pub crypto.PublicKey }

func (p pubOnly) Public() crypto.PublicKey { return p.pub }
func (p pubOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("never called")
}

// fulcio is an in-process stand-in for Fulcio's /api/v2/signingCert: it
// checks the OIDC token and the proof of possession, then certifies the key
// for the token's identity with its own root and intermediate.
func fulcio(t testing.TB, idp *ecdsa.PublicKey) (*httptest.Server, *root.FulcioCertificateAuthority) {
	t.Helper()
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	interCert, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/signingCert" {
			http.NotFound(w, r)
			return
		}
		email, err := checkToken(idp, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var req struct {
			PublicKeyRequest struct {
				PublicKey struct {
					Content string `json:"content"`
				} `json:"publicKey"`
				ProofOfPossession string `json:"proofOfPossession"`
			} `json:"publicKeyRequest"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pop, _ := base64.StdEncoding.DecodeString(req.PublicKeyRequest.ProofOfPossession)
		h := sha256.Sum256([]byte(email))
		if ek, ok := pub.(*ecdsa.PublicKey); !ok || !ecdsa.VerifyASN1(ek, h[:], pop) {
			http.Error(w, "no proof of possession", http.StatusBadRequest)
			return
		}
		leaf, err := ca.GenerateLeafCert(email, TestIssuer, time.Now().Add(-time.Second), pubOnly{pub}, interCert, interKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		var chain []string
		for _, c := range []*x509.Certificate{leaf, interCert, rootCert} {
			p, _ := cryptoutils.MarshalCertificateToPEM(c)
			chain = append(chain, string(p))
		}
		json.NewEncoder(w).Encode(map[string]any{"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": chain}}})
	}))
	t.Cleanup(srv.Close)
	return srv, &root.FulcioCertificateAuthority{Root: rootCert, Intermediates: []*x509.Certificate{interCert}}
}

// rekor is an in-process stand-in for Rekor's POST /api/v1/log/entries: it
// logs DSSE entries in sigstore-go's virtual transparency log, which signs
// the entry timestamp and the inclusion proof.
func rekor(t testing.TB, vs *ca.VirtualSigstore) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/log/entries" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		var req struct {
			Kind string `json:"kind"`
			Spec struct {
				ProposedContent struct {
					Envelope  string   `json:"envelope"`
					Verifiers [][]byte `json:"verifiers"`
				} `json:"proposedContent"`
			} `json:"spec"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Kind != "dsse" || len(req.Spec.ProposedContent.Verifiers) != 1 {
			http.Error(w, "want one dsse entry", http.StatusBadRequest)
			return
		}
		var env ssldsse.Envelope
		if err := json.Unmarshal([]byte(req.Spec.ProposedContent.Envelope), &env); err != nil || len(env.Signatures) != 1 {
			http.Error(w, "bad envelope", http.StatusBadRequest)
			return
		}
		certs, err := cryptoutils.UnmarshalCertificatesFromPEM(req.Spec.ProposedContent.Verifiers[0])
		if err != nil || len(certs) != 1 {
			http.Error(w, "bad verifier", http.StatusBadRequest)
			return
		}
		sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
		entry, err := vs.GenerateTlogEntry(certs[0], &env, sig, time.Now().Unix(), true)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		tle := entry.TransparencyLogEntry()
		p := tle.GetInclusionProof()
		var hashes []string
		for _, h := range p.GetHashes() {
			hashes = append(hashes, hex.EncodeToString(h))
		}
		logID, logIndex, integrated := hex.EncodeToString(tle.GetLogId().GetKeyId()), tle.GetLogIndex(), tle.GetIntegratedTime()
		rootHash, treeSize, proofIndex, checkpoint := hex.EncodeToString(p.GetRootHash()), p.GetTreeSize(), p.GetLogIndex(), p.GetCheckpoint().GetEnvelope()
		body := base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody())
		set, err := vs.RekorSignPayload(tlog.RekorPayload{Body: body, IntegratedTime: integrated, LogIndex: logIndex, LogID: logID})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		uuid := hex.EncodeToString(tle.GetCanonicalizedBody()[:8])
		w.Header().Set("ETag", uuid)
		w.Header().Set("Location", "/api/v1/log/entries/"+uuid)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]models.LogEntryAnon{uuid: {
			Body: body, IntegratedTime: &integrated,
			LogID: &logID, LogIndex: &logIndex,
			Verification: &models.LogEntryAnonVerification{
				SignedEntryTimestamp: set,
				InclusionProof: &models.InclusionProof{Checkpoint: &checkpoint, Hashes: hashes, LogIndex: &proofIndex,
					RootHash: &rootHash, TreeSize: &treeSize},
			},
		}})
	}))
	t.Cleanup(srv.Close)
	return srv
}
