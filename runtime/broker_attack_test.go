package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBrokerHostileClients: what a client that is not a well-behaved guest
// can try beyond TestBrokerRefusals' cases (replayed, forged and expired
// nonces, relabelled evidence, a key other than the bound one, oversized
// bodies) and TestBrokerNonceLimits' (many nonces).
func TestBrokerHostileClients(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune func(*BrokerOptions)
		run  func(t *testing.T, f *brokerFixture)
	}{
		// Key requests whose bodies trickle in must not take the slots of
		// verification: with them held, every guest got 503 for as long as
		// the slow clients liked (the server's ReadTimeout, then again).
		{"slow bodies do not hold the verification slots", func(o *BrokerOptions) { o.MaxInFlight = 2 }, func(t *testing.T, f *brokerFixture) {
			for range 2 {
				c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: broker\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"evidence\":", PathKey)
			}
			// Give the handlers time to start (on the code before, until
			// they hold both slots).
			for end := time.Now().Add(time.Second); time.Now().Before(end) && len(f.broker.slots) < 2; {
				time.Sleep(10 * time.Millisecond)
			}
			ev, priv := f.evidence(t, modelA, nil)
			rel, err := f.client.Keys(context.Background(), ev)
			if err != nil {
				t.Fatalf("a guest behind two slow clients: %v", err)
			}
			if _, err := rel.Unwrap(priv, modelA); err != nil {
				t.Fatal(err)
			}
		}},
		// Duplicate JSON keys: one parse, the last value wins, and the key
		// that is checked against REPORT_DATA is the key the layer keys are
		// wrapped to.
		{"a second public_key after the bound one", nil, func(t *testing.T, f *brokerFixture) {
			ev, _ := f.evidence(t, modelA, nil)
			_, other := mustP256(t)
			code, r := f.post(t, withField(t, ev, "public_key", base64.StdEncoding.EncodeToString(other)), "application/json")
			if code != http.StatusForbidden || r.Step != StepReportData {
				t.Fatalf("got %d %+v, want 403 at %q", code, r, StepReportData)
			}
		}},
		{"a second public_key before the bound one", nil, func(t *testing.T, f *brokerFixture) {
			ev, priv := f.evidence(t, modelA, nil)
			_, other := mustP256(t)
			body, _ := json.Marshal(KeyRequest{Evidence: ev})
			// The attacker's key first: the bound key, later, is the one read.
			first := `{"public_key":"` + base64.StdEncoding.EncodeToString(other) + `","format"`
			body = bytes.Replace(body, []byte(`{"format"`), []byte(first), 1)
			resp, err := http.Post(f.srv.URL+PathKey, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var rel KeyRelease
			if err := json.NewDecoder(resp.Body).Decode(&rel); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %v", resp.StatusCode, err)
			}
			if _, err := rel.Unwrap(priv, modelA); err != nil {
				t.Fatalf("the keys are not wrapped to the bound key: %v", err)
			}
		}},
		{"a second nonce after the bound one", nil, func(t *testing.T, f *brokerFixture) {
			ev, _ := f.evidence(t, modelA, nil)
			n, err := f.client.Nonce(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			code, r := f.post(t, withField(t, ev, "nonce", hex.EncodeToString(n)), "application/json")
			if code != http.StatusForbidden || r.Step != StepReportData {
				t.Fatalf("got %d %+v, want 403 at %q", code, r, StepReportData)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newBrokerFixture(t, tc.tune)
			tc.run(t, f)
			// Close waits for the handlers: events and logs are complete.
			f.srv.CloseClientConnections()
			f.srv.Close()
			noKeyMaterial(t, f, f.events.Bytes(), f.log.Bytes())
		})
	}
}

// withField is ev's key request with one more field name: value at the
// end of the evidence object, after the one it already has.
func withField(t *testing.T, ev *Evidence, name, value string) []byte {
	t.Helper()
	body, err := json.Marshal(KeyRequest{Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(`"`+name+`":`)) {
		t.Fatalf("the evidence has no %s field", name)
	}
	i := bytes.LastIndex(body, []byte("}}"))
	return append(body[:i:i], []byte(`,"`+name+`":"`+value+`"}}`)...)
}

// TestHostileBrokerAnswers: what runtime load --broker does with a broker
// (or whoever answers in its place) that does not follow the protocol.
// Released keys that do not unwrap are TestWrapUnwrap's.
func TestHostileBrokerAnswers(t *testing.T) {
	sim := &Simulated{Dir: t.TempDir()}
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		want   string
	}{
		{"an answer over 4 MiB", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"format":"` + strings.Repeat("A", maxBrokerAnswer) + `"}`))
		}, "over 4194304 bytes"},
		{"a 200 that is not a key release", func(w http.ResponseWriter) {
			w.Write([]byte(`{"format":"` + KeyReleaseFormat + `","please":"keys"}`))
		}, "unknown field"},
		{"a release in another format", func(w http.ResponseWriter) {
			w.Write([]byte(`{"format":"v0","model":"` + modelA + `","keys":[]}`))
		}, "format"},
		{"a 503 is not a refusal", func(w http.ResponseWriter) {
			writeJSON(w, http.StatusServiceUnavailable, Refusal{Step: "registry", Reason: "cannot read the model"})
		}, "broker could not decide: registry: cannot read the model (HTTP 503"},
		{"an error body with terminal escapes and pages of text", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("\x1b]0;owned\x07\x1b[2J" + strings.Repeat("x", 5000)))
		}, "broker could not decide: /v1/key: ?]0;owned??[2J"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == PathNonce {
					writeJSON(w, http.StatusOK, NonceResponse{Nonce: strings.Repeat("ab", NonceSize), Expires: time.Now().Add(time.Minute)})
					return
				}
				tc.answer(w)
			}))
			defer srv.Close()
			rel, err := RequestKeys(context.Background(), ReleaseOptions{Broker: &BrokerClient{URL: srv.URL}, Provider: sim,
				Reference: "reg.example/m:v1", ManifestDigest: modelA, PolicyDigest: polA})
			if err == nil || !strings.Contains(err.Error(), tc.want) || (rel != nil && rel.Keys != nil) {
				t.Fatalf("got %v (keys %v), want an error saying %q and no key", err, rel, tc.want)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\x1b\x07\n") || len(msg) > 2*maxRefusalText+200 {
				t.Fatalf("the broker's text reached the error unfiltered (%d bytes): %q", len(msg), msg)
			}
			if errors.Is(err, ErrRefused) {
				t.Fatalf("a broker that broke the protocol is not a refusal (exit 3): %v", err)
			}
		})
	}
}
