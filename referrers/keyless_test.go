package referrers_test

import (
	"context"
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
	"path/filepath"
	"strings"
	"testing"
	"time"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/rekor/pkg/generated/models"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

const (
	testIssuer   = "https://oidc.acme.example"
	testIdentity = "ml-release@acme.example"
)

// oidcToken makes an ES256 JWT from the test identity provider.
func oidcToken(t *testing.T, key *ecdsa.PrivateKey, email string) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	header := enc([]byte(`{"alg":"ES256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"iss": testIssuer, "sub": email, "email": email, "email_verified": true,
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
	if c.Iss != testIssuer {
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
func fulcio(t *testing.T, idp *ecdsa.PublicKey) (*httptest.Server, *root.FulcioCertificateAuthority) {
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
		leaf, err := ca.GenerateLeafCert(email, testIssuer, time.Now().Add(-time.Second), pubOnly{pub}, interCert, interKey)
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
func rekor(t *testing.T, vs *ca.VirtualSigstore) *httptest.Server {
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

// keylessMaterial trusts the stand-in Fulcio's CA and the virtual log.
type keylessMaterial struct {
	*ca.VirtualSigstore
	fulcio *root.FulcioCertificateAuthority
}

func (m keylessMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return []root.CertificateAuthority{m.fulcio}
}

// TestKeylessEndToEnd signs keylessly through our Fulcio and Rekor clients
// against in-process stand-ins speaking their HTTP APIs (no network), stores
// the bundle as a referrer, and verifies it for the right identity only.
func TestKeylessEndToEnd(t *testing.T) {
	ctx := context.Background()
	idp, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	fsrv, fca := fulcio(t, &idp.PublicKey)
	rsrv := rekor(t, vs)

	s, err := referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: fsrv.URL, RekorURL: rsrv.URL, IDToken: oidcToken(t, idp, testIdentity)})
	if err != nil {
		t.Fatal(err)
	}
	tgt, _ := oras.OpenLayout(filepath.Join(t.TempDir(), "layout"))
	subject := model(t, tgt)
	desc, err := referrers.Sign(ctx, tgt, subject, s, referrers.AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := referrers.FetchReferrer(ctx, tgt, desc, subject.Digest)
	if err != nil {
		t.Fatal(err)
	}
	tm := keylessMaterial{VirtualSigstore: vs, fulcio: fca}
	good := []referrers.KeylessIdentity{
		{Issuer: testIssuer, Subject: testIdentity},
		{Issuer: testIssuer, SubjectRegExp: `^[a-z-]+@acme\.example$`},
	}
	for _, id := range good {
		v, err := referrers.NewKeylessVerifierWithMaterial("ml-platform", tm, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ref.Bundle, subject.Digest); err != nil {
			t.Fatalf("%+v: %v", id, err)
		}
	}
	bad := []referrers.KeylessIdentity{
		{Issuer: testIssuer, Subject: "intern@acme.example"},
		{Issuer: "https://token.actions.githubusercontent.com", Subject: testIdentity},
		{Issuer: testIssuer, SubjectRegExp: `^admin@`},
	}
	for _, id := range bad {
		v, _ := referrers.NewKeylessVerifierWithMaterial("ml-platform", tm, id)
		if _, err := v.Verify(ref.Bundle, subject.Digest); !errors.Is(err, referrers.ErrVerification) {
			t.Errorf("%+v: err = %v", id, err)
		}
	}
	// Another Fulcio's CA is not trusted.
	_, otherCA := fulcio(t, &idp.PublicKey)
	v, _ := referrers.NewKeylessVerifierWithMaterial("x", keylessMaterial{VirtualSigstore: vs, fulcio: otherCA}, good[0])
	if _, err := v.Verify(ref.Bundle, subject.Digest); !errors.Is(err, referrers.ErrVerification) {
		t.Errorf("untrusted CA: err = %v", err)
	}
	// A token from another identity provider gets no certificate.
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s2, _ := referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: fsrv.URL, RekorURL: rsrv.URL, IDToken: oidcToken(t, stranger, testIdentity)})
	if _, err := referrers.Sign(ctx, tgt, subject, s2, referrers.AttachOptions{}); err == nil {
		t.Error("signed with a token the identity provider did not issue")
	}
}
