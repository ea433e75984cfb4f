package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelattest/modelattest/internal/regtest"
)

// cluster is a real etcd and kube-apiserver on loopback, driven with the
// real kubectl: no controller-manager, no scheduler, no kubelet, so pods
// stay Pending, which is all admission needs.
type cluster struct {
	dir        string
	kubeconfig string
	kubectlBin string
	auditLog   string
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startCluster starts etcd and kube-apiserver (from .tools/bin) and
// returns once the API server is ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	etcdBin, apiBin, kubectlBin := regtest.Tool(t, "etcd"), regtest.Tool(t, "kube-apiserver"), regtest.Tool(t, "kubectl")
	dir := t.TempDir()
	// A client CA and an admin certificate in system:masters.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER)
	admKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	admTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	admDER, _ := x509.CreateCertificate(rand.Reader, admTmpl, ca, &admKey.PublicKey, caKey)
	writePEM(t, filepath.Join(dir, "admin.crt"), "CERTIFICATE", admDER)
	admKeyDER, _ := x509.MarshalECPrivateKey(admKey)
	writePEM(t, filepath.Join(dir, "admin.key"), "EC PRIVATE KEY", admKeyDER)
	saKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	saDER, _ := x509.MarshalECPrivateKey(saKey)
	writePEM(t, filepath.Join(dir, "sa.key"), "EC PRIVATE KEY", saDER)
	saPub, _ := x509.MarshalPKIXPublicKey(saKey.Public())
	writePEM(t, filepath.Join(dir, "sa.pub"), "PUBLIC KEY", saPub)
	if err := os.WriteFile(filepath.Join(dir, "audit-policy.yaml"), []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	client, peer := regtest.FreePort(t), regtest.FreePort(t)
	etcd := exec.Command(etcdBin, "--name", "default", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "default=http://"+peer, "--log-level", "error")
	etcdLog, _ := os.Create(filepath.Join(dir, "etcd.log"))
	etcd.Stdout, etcd.Stderr = etcdLog, etcdLog
	if err := etcd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = etcd.Process.Kill(); _ = etcd.Wait() })
	regtest.WaitHTTP(t, "http://"+client+"/health", etcd)

	secure := regtest.FreePort(t)
	_, port, _ := net.SplitHostPort(secure)
	c := &cluster{dir: dir, kubeconfig: filepath.Join(dir, "kubeconfig"), kubectlBin: kubectlBin, auditLog: filepath.Join(dir, "audit.log")}
	api := exec.Command(apiBin, "--etcd-servers", "http://"+client, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", port, "--cert-dir", filepath.Join(dir, "serving"), "--client-ca-file", filepath.Join(dir, "ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc", "--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"), "--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "RBAC", "--endpoint-reconciler-type", "none",
		"--audit-policy-file", filepath.Join(dir, "audit-policy.yaml"), "--audit-log-path", c.auditLog)
	apiLog, _ := os.Create(filepath.Join(dir, "apiserver.log"))
	api.Stdout, api.Stderr = apiLog, apiLog
	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Process.Kill(); _ = api.Wait() })
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://%s", insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {client-certificate: %s, client-key: %s}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, secure, filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	if err := os.WriteFile(c.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := c.kubectlErr("", "get", "--raw", "/readyz")
		if err == nil && strings.Contains(out, "ok") {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "apiserver.log"))
			t.Fatalf("kube-apiserver not ready: %s\n%s", out, tail(string(log), 3000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kubectlErr runs kubectl with stdin and returns its combined output.
func (c *cluster) kubectlErr(stdin string, args ...string) (string, error) {
	cmd := exec.Command(c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kubectl runs kubectl and fails the test if it fails.
func (c *cluster) kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := c.kubectlErr(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
