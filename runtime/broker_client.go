package runtime

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/opencontainers/go-digest"
)

// maxBrokerAnswer bounds what the client reads from a broker.
const maxBrokerAnswer = 4 << 20

// RefusalError is a broker's refusal: the step it names and why. It wraps
// ErrRefused, so a CLI maps it to exit code 3.
type RefusalError struct {
	// Status is the HTTP status of the answer.
	Status int
	Refusal
}

func (e *RefusalError) Error() string {
	// The step and reason come from the broker: a hostile one must not
	// write terminal escapes or pages of text into the user's terminal.
	step, reason := printable(e.Step), printable(e.Reason)
	if e.Status != http.StatusForbidden {
		return fmt.Sprintf("broker could not decide: %s: %s (HTTP %d, request %s)", step, reason, e.Status, printable(e.RequestID))
	}
	return fmt.Sprintf("%v: broker: %s: %s (HTTP %d, request %s)", ErrRefused, step, reason, e.Status, printable(e.RequestID))
}

// maxRefusalText bounds each broker-given string quoted in an error.
const maxRefusalText = 512

// printable keeps a broker-given string to one line of printable text,
// at most maxRefusalText runes.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == maxRefusalText {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Unwrap makes a 403 an ErrRefused (exit 3); any other status is a broker
// that could not decide (exit 1).
func (e *RefusalError) Unwrap() error {
	if e.Status == http.StatusForbidden {
		return ErrRefused
	}
	return nil
}

// BrokerClient talks to a Broker.
type BrokerClient struct {
	// URL is the broker's base URL (http:// or https://), without the
	// /v1 paths.
	URL string
	// HTTP is the client used (nil: one with a 90 s timeout and the
	// system's roots).
	HTTP *http.Client
}

func (c *BrokerClient) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 90 * time.Second}
}

func (c *BrokerClient) post(ctx context.Context, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("broker %s: %w", c.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client().Do(req)
	if err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBrokerAnswer+1))
	if err != nil {
		return fmt.Errorf("broker %s: %w", path, err)
	}
	if len(raw) > maxBrokerAnswer {
		return fmt.Errorf("broker %s: the answer is over %d bytes", path, maxBrokerAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		re := &RefusalError{Status: resp.StatusCode}
		if err := json.Unmarshal(raw, &re.Refusal); err != nil || re.Step == "" {
			re.Step, re.Reason = path, strings.TrimSpace(string(raw))
		}
		return re
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("broker %s: %w", path, err)
	}
	return nil
}

// Nonce asks the broker for a fresh nonce.
func (c *BrokerClient) Nonce(ctx context.Context) ([]byte, error) {
	var nr NonceResponse
	if err := c.post(ctx, PathNonce, nil, &nr); err != nil {
		return nil, err
	}
	n, err := hex.DecodeString(nr.Nonce)
	if err != nil || len(n) == 0 || len(n) > 64 {
		return nil, fmt.Errorf("broker %s: nonce %q is not 1 to 64 bytes of hex", PathNonce, nr.Nonce)
	}
	return n, nil
}

// Keys posts evidence and returns the broker's release, still wrapped.
func (c *BrokerClient) Keys(ctx context.Context, ev *Evidence) (*KeyRelease, error) {
	body, err := json.Marshal(KeyRequest{Evidence: ev})
	if err != nil {
		return nil, err
	}
	var rel KeyRelease
	if err := c.post(ctx, PathKey, body, &rel); err != nil {
		return nil, err
	}
	return &rel, nil
}

// ReleaseOptions say which verified model to ask keys for.
type ReleaseOptions struct {
	// Broker is the relying party. Required.
	Broker *BrokerClient
	// Provider makes the TEE report. Required.
	Provider Provider
	// Reference is the model as typed; the broker re-verifies the model
	// in its registry through it.
	Reference string
	// ManifestDigest and PolicyDigest are what the guest verified.
	ManifestDigest, PolicyDigest digest.Digest
	// Verification is the guest's verification report, JSON (optional,
	// informative to the broker).
	Verification json.RawMessage
}

// Release is what RequestKeys obtained.
type Release struct {
	// Evidence is what was sent: its public_key is the ephemeral key.
	Evidence *Evidence
	// Keys are the unwrapped layer keys, by layer digest.
	Keys map[digest.Digest][]byte
	// RequestID names the request in the broker's event and log.
	RequestID string
}

// RequestKeys runs the broker flow for a model the guest has verified: a
// nonce from the broker, a fresh ephemeral P-256 key, evidence whose
// REPORT_DATA binds the SHA-256 of its SubjectPublicKeyInfo, the keys
// released for it, unwrapped. The ephemeral private key never leaves this
// function.
func RequestKeys(ctx context.Context, o ReleaseOptions) (*Release, error) {
	if o.Broker == nil || o.Provider == nil {
		return nil, errors.New("key release: a broker and a TEE provider are required")
	}
	nonce, err := o.Broker.Nonce(ctx)
	if err != nil {
		return nil, err
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(priv.PublicKey())
	if err != nil {
		return nil, err
	}
	kh := sha256.Sum256(spki)
	ev, err := Collect(ctx, o.Provider, CollectOptions{
		Reference: o.Reference,
		Binding: Binding{ManifestDigest: o.ManifestDigest.String(), PolicyDigest: o.PolicyDigest.String(),
			Nonce: nonce, KeyHash: kh[:]},
		PublicKey:    spki,
		Verification: o.Verification,
	})
	if err != nil {
		return nil, err
	}
	rel, err := o.Broker.Keys(ctx, ev)
	if err != nil {
		return &Release{Evidence: ev}, err
	}
	keys, err := rel.Unwrap(priv, o.ManifestDigest)
	if err != nil {
		return &Release{Evidence: ev, RequestID: rel.RequestID}, err
	}
	return &Release{Evidence: ev, Keys: keys, RequestID: rel.RequestID}, nil
}
