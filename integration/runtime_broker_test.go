package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/oras"
	tee "github.com/modelattest/modelattest/runtime"
)

// TestRuntimeBrokerEndToEnd: an encrypted model pushed to the embedded
// registry, `runtime broker serve` as a process, and `runtime load
// --broker` with simulated-snp evidence (INSECURE, for tests): the key is
// released and the files decrypt to the originals. An unsigned encrypted
// model gets no key and nothing is written; evidence relabelled to another
// model, a replayed nonce and a model that fails the policy are refused by
// the broker at their step; every key request is one schema-valid broker
// event, and no layer key appears in an event or in the broker's log.
func TestRuntimeBrokerEndToEnd(t *testing.T) {
	host := regtest.Embedded(t, "")
	keys := keyDir(t)
	policy := writeRuntimePolicy(t, keys, "")
	dir := t.TempDir()

	// The recipient key pair the layers are encrypted to; the broker holds
	// the private half.
	bk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPath := regtest.WriteKey(t, filepath.Join(dir, "broker.key"), bk)
	pubDER, _ := x509.MarshalPKIXPublicKey(&bk.PublicKey)
	pubPath := filepath.Join(dir, "broker.pub")
	os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)

	secret, unsigned, plain := host+"/models/secret:v1", host+"/models/secret:unsigned", host+"/models/plain:v1"
	model := regtest.ModelDir(t, 4096)
	secretDigest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", "--encrypt-recipient", "jwe:"+pubPath, secret, model))
	ma(t, "sign", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), secret)
	unsignedDigest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", "--encrypt-recipient", "jwe:"+pubPath, unsigned, regtest.ModelDir(t, 2048)))
	plainDigest := digestOf(t, ma(t, "push", "--plain-http", "--no-progress", plain, regtest.ModelDir(t, 1024)))
	ma(t, "sign", "--plain-http", "--key", filepath.Join(keys, "cosign.key"), plain)

	// The simulated chain exists before the broker trusts its root.
	sim := filepath.Join(dir, "sim")
	if _, err := (&tee.Simulated{Dir: sim}).Quote(context.Background(), [64]byte{}); err != nil {
		t.Fatal(err)
	}
	// serve starts a broker process; its events go to eventsPath, its log
	// to logPath.
	serve := func(name string, extra ...string) (url, eventsPath, logPath string, srv *exec.Cmd) {
		addr := regtest.FreePort(t)
		eventsPath, logPath = filepath.Join(dir, name+"-events.jsonl"), filepath.Join(dir, name+".log")
		logf, _ := os.Create(logPath)
		srv = exec.Command(modelattest, append([]string{"runtime", "broker", "serve", "--address", addr, "--policy", policy, "--key", privPath,
			"--tee-roots", filepath.Join(sim, "roots.pem"), "--plain-http", "--events", eventsPath}, extra...)...)
		srv.Stdout, srv.Stderr = logf, logf
		srv.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+dir)
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait(); logf.Close() })
		scheme, hc := "http", http.DefaultClient
		if slices.Contains(extra, "--tls-cert") {
			pool := x509.NewCertPool()
			ca, _ := os.ReadFile(extra[slices.Index(extra, "--tls-cert")+1])
			pool.AppendCertsFromPEM(ca)
			scheme, hc = "https", &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := hc.Get(scheme + "://" + addr + tee.PathNonce)
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				log, _ := os.ReadFile(logPath)
				t.Fatalf("broker %s did not come up: %v\n%s", name, err, log)
			}
		}
		return scheme + "://" + addr, eventsPath, logPath, srv
	}
	broker, eventsPath, logPath, srv := serve("broker")

	load := func(broker, ref, out, evidence string, extra ...string) (string, int) {
		return maCode(t, append([]string{"runtime", "load", "--plain-http", ref, "-o", out, "--policy", policy, "--broker", broker,
			"--evidence", evidence, "--tee", "simulated-snp", "--simulated-root", sim}, extra...)...)
	}
	// A broker over TLS that pins another launch measurement refuses this
	// guest: runtime load (trusting the broker's certificate through
	// --broker-ca-file) exits 3 naming the step, and nothing lands.
	cert, key := regtest.SelfSignedCert(t, t.TempDir())
	strict, _, _, _ := serve("strict", "--measurement", strings.Repeat("00", 48), "--tls-cert", cert, "--tls-key", key)
	outS, evS := filepath.Join(dir, "out-strict"), filepath.Join(dir, "evidence-strict.json")
	if got, code := load(strict, secret, outS, evS); code != 1 || !strings.Contains(got, "certificate") {
		t.Fatalf("a TLS broker without its CA: exit %d\n%s", code, got)
	}
	if got, code := load(strict, secret, outS, evS, "--broker-ca-file", cert); code != 3 || !strings.Contains(got, "broker: "+tee.StepMeasurement+": ") {
		t.Fatalf("broker pinning another measurement: exit %d\n%s", code, got)
	}
	for _, p := range []string{outS, evS} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists after a refused key release (%v)", p, err)
		}
	}

	out, evFile := filepath.Join(dir, "out"), filepath.Join(dir, "evidence.json")
	got, code := load(broker, secret, out, evFile)
	if code != 0 || !strings.Contains(got, "INSECURE") || !strings.Contains(got, "Broker released ") || strings.Contains(got, "Broker released 0 ") {
		t.Fatalf("runtime load --broker: exit %d\n%s", code, got)
	}
	regtest.SameTree(t, model, out)

	// An unsigned encrypted model: refused before any nonce is asked
	// for; nothing in -o DIR, no evidence.
	out2, ev2 := filepath.Join(dir, "out-unsigned"), filepath.Join(dir, "evidence-unsigned.json")
	if got, code := load(broker, unsigned, out2, ev2); code != 3 || strings.Contains(got, "Broker released") {
		t.Fatalf("unsigned model: exit %d\n%s", code, got)
	}
	for _, p := range []string{out2, ev2} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists after a refused load (%v)", p, err)
		}
	}

	// The broker's own refusals, with evidence a guest could send.
	bc := &tee.BrokerClient{URL: broker}
	pol, _ := os.ReadFile(policy)
	polDigest := digest.FromBytes(pol)
	simP := &tee.Simulated{Dir: sim}
	evidenceFor := func(t *testing.T, manifest string) *tee.Evidence {
		t.Helper()
		n, err := bc.Nonce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		kh := digest.FromBytes(spki)
		khb, _ := hex.DecodeString(kh.Encoded())
		ev, err := tee.Collect(context.Background(), simP, tee.CollectOptions{Reference: strings.Split(secret, ":v1")[0] + "@" + manifest,
			Binding: tee.Binding{ManifestDigest: manifest, PolicyDigest: polDigest.String(), Nonce: n, KeyHash: khb}, PublicKey: spki})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	sent, err := tee.ReadEvidence(evFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, step string
		ev         func(t *testing.T) *tee.Evidence
	}{
		{"a replayed nonce (the evidence runtime load sent)", tee.StepNonce, func(t *testing.T) *tee.Evidence { return sent }},
		{"genuine evidence for an unsigned model", tee.StepModel, func(t *testing.T) *tee.Evidence {
			ev := evidenceFor(t, unsignedDigest)
			ev.Model.Reference = unsigned
			return ev
		}},
		{"evidence for a signed plaintext model relabelled to the encrypted one", tee.StepReportData, func(t *testing.T) *tee.Evidence {
			ev := evidenceFor(t, plainDigest)
			ev.Model.Digest = secretDigest
			return ev
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := bc.Keys(context.Background(), tc.ev(t))
			var re *tee.RefusalError
			if rel != nil || !errors.As(err, &re) || re.Status != 403 || re.Step != tc.step || !errors.Is(err, tee.ErrRefused) {
				t.Fatalf("want a 403 at %q, got %v %v", tc.step, rel, err)
			}
		})
	}

	// One decision event per key request: 1 released, 3 refused (the
	// unsigned load never reached the broker).
	_ = srv.Process.Signal(os.Interrupt)
	_ = srv.Wait()
	raw, _ := os.ReadFile(eventsPath)
	evs := regtest.DecisionEvents(t, raw)
	var verdicts []string
	for _, e := range evs {
		u := e["data"].(map[string]any)["unmapped"].(map[string]any)
		if u["face"] != "broker" {
			t.Fatalf("face %v", u["face"])
		}
		verdicts = append(verdicts, u["verdict"].(string))
	}
	if strings.Join(verdicts, ",") != "pass,fail,fail,fail" {
		t.Fatalf("broker events: %v\n%s", verdicts, raw)
	}

	// No layer key, in any form, in the events or the log.
	tgt, err := oras.OpenRemote(context.Background(), secret, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	desc, _ := oras.Resolve(context.Background(), tgt, secretDigest)
	m, _, err := oras.FetchManifest(context.Background(), tgt, desc)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, _ := os.ReadFile(privPath)
	layerKeys, err := encryption.UnwrapKeys(context.Background(), m, privPEM)
	if err != nil || len(layerKeys) == 0 {
		t.Fatalf("unwrap: %v (%d keys)", err, len(layerKeys))
	}
	log, _ := os.ReadFile(logPath)
	privDER, _ := x509.MarshalPKCS8PrivateKey(bk)
	for _, out := range [][]byte{raw, log} {
		for _, k := range append(mapValues(layerKeys), privDER) {
			for _, form := range []string{string(k), hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k)} {
				if bytes.Contains(out, []byte(form)) {
					t.Fatalf("key material in the broker's output:\n%s", out)
				}
			}
		}
	}
	if !strings.Contains(string(log), `"msg":"keys released"`) || !strings.Contains(string(log), `"step":"nonce"`) {
		t.Fatalf("broker log:\n%s", log)
	}
}

func mapValues(k encryption.Keys) [][]byte {
	var out [][]byte
	for _, v := range k {
		out = append(out, v)
	}
	return out
}

// TestRuntimeLoadBrokerCommandLine: --broker and --nonce exclude each
// other, --broker needs an http(s) URL and a registry: exit 2.
func TestRuntimeLoadBrokerCommandLine(t *testing.T) {
	base := []string{"runtime", "load", "reg.example/m:v1", "-o", t.TempDir(), "--policy", "p.yaml", "--evidence", "e.json", "--tee", "auto"}
	for _, tc := range []struct {
		extra []string
		want  string
	}{
		{[]string{"--broker", "http://b", "--nonce", "00"}, "either --nonce HEX or --broker URL"},
		{nil, "either --nonce HEX or --broker URL"},
		{[]string{"--broker", "b:8444"}, "want an http:// or https:// URL"},
		{[]string{"--broker", "http://b", "--oci-layout"}, "--broker needs a registry reference"},
		{[]string{"--nonce", "00", "--broker-ca-file", "ca.pem"}, "--broker-ca-file needs --broker"},
	} {
		got, code := maCode(t, append(base, tc.extra...)...)
		if code != 2 || !strings.Contains(got, tc.want) {
			t.Errorf("%v: exit %d, want 2 with %q:\n%s", tc.extra, code, tc.want, got)
		}
	}
}
