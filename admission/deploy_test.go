package admission

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	admregv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/modelattest/modelattest/internal/regtest"
)

// The committed webhook configurations (deploy/base) and the chart's
// match conditions are what `admission manifests` generates from the
// committed policy: regenerate them when the scope or the generator
// changes.
func TestCommittedManifestsAreGenerated(t *testing.T) {
	root := regtest.RepoRoot(t)
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(root, "deploy", "base", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	if err := os.WriteFile(filepath.Join(dir, "release.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(context.Background(), filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteManifests(&buf, p, ManifestOptions{Mutate: true}); err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, "deploy", "base", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, buf.Bytes()) {
		t.Errorf("deploy/base/webhooks.yaml differs from `modelattest admission manifests --policy deploy/base/policy.yaml --mutate`:\n%s", buf.String())
	}
	values, err := os.ReadFile(filepath.Join(root, "charts", "modelattest-admission", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		MatchConditions map[string][]admregv1.MatchCondition `json:"matchConditions"`
	}
	if err := yaml.Unmarshal(values, &v); err != nil {
		t.Fatal(err)
	}
	if want := MatchConditions(p); !reflect.DeepEqual(v.MatchConditions, want) {
		t.Errorf("the chart's matchConditions differ from the generated ones:\n%v\nwant\n%v", v.MatchConditions, want)
	}
}
