package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasgo "oras.land/oras-go/v2"

	"github.com/modelattest/modelattest/internal/regtest"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
)

// pullWorld is a real registry behind a counting proxy, for the attacks on
// what a pull writes: the staging folder, the output directory, paths and
// modes.
type pullWorld struct {
	ctx   context.Context
	proxy *regtest.Proxy
}

func newPullWorld(t *testing.T, tagSchema bool) *pullWorld {
	t.Helper()
	host := ""
	if tagSchema {
		host = regtest.Distribution(t, "")
	} else {
		host = regtest.Embedded(t, "")
	}
	return &pullWorld{ctx: context.Background(), proxy: regtest.NewProxy(t, host)}
}

// model pushes regtest.ModelDir to repo:v1 and returns the reference, the
// folder it came from and the manifest.
func (w *pullWorld) model(t *testing.T, repo string) (string, string, *ocispec.Manifest) {
	t.Helper()
	tgt, err := oras.OpenRemote(w.ctx, w.proxy.Host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	dir := regtest.ModelDir(t, 64<<10)
	desc, err := oras.Push(w.ctx, tgt, "v1", dir, oras.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := oras.FetchManifest(w.ctx, tgt, desc)
	if err != nil {
		t.Fatal(err)
	}
	return w.proxy.Host + "/" + repo + ":v1", dir, m
}

// crafted pushes a manifest of raw weight layers, one per path, each with
// the given metadata annotation (none when empty), as a hostile packer would.
func (w *pullWorld) crafted(t *testing.T, repo string, paths []string, metadata string) string {
	t.Helper()
	tgt, err := oras.OpenRemote(w.ctx, w.proxy.Host+"/"+repo, oras.RemoteOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	var layers []ocispec.Descriptor
	for _, p := range paths {
		body := []byte("content of " + p)
		l, err := orasgo.PushBytes(w.ctx, tgt, modelspec.KindWeight.MediaType(), body)
		if err != nil {
			t.Fatal(err)
		}
		l.Annotations = map[string]string{modelspec.AnnotationFilepath: p}
		if metadata != "" {
			l.Annotations[modelspec.AnnotationFileMetadata] = metadata
		}
		layers = append(layers, l)
	}
	cfg, err := orasgo.PushBytes(w.ctx, tgt, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: modelspec.ArtifactType, Config: cfg, Layers: layers})
	if _, err := orasgo.TagBytes(w.ctx, tgt, ocispec.MediaTypeImageManifest, b, "v1"); err != nil {
		t.Fatal(err)
	}
	return w.proxy.Host + "/" + repo + ":v1"
}

func (w *pullWorld) pull(t *testing.T, ref, out string, extra ...string) (string, int) {
	t.Helper()
	args := append([]string{"pull", "--plain-http", "--no-progress", "--insecure-skip-verify", "-o", out, ref}, extra...)
	return maCode(t, args...)
}

func (w *pullWorld) blobGETs(repo string) int { return w.proxy.Count("GET", "/v2/"+repo+"/blobs/") }

// layerGETs counts the GETs of the model's layers: the bytes of its files.
func (w *pullWorld) layerGETs(repo string, m *ocispec.Manifest) int {
	n := 0
	for _, l := range m.Layers {
		n += w.proxy.Count("GET", "/v2/"+repo+"/blobs/"+l.Digest.String())
	}
	return n
}

// plantStaging fills the staging folder beside out with the model's
// verified blobs, as another local user (or an earlier, other process)
// could, and returns their file infos by path.
func plantStaging(t *testing.T, out, src string, m *ocispec.Manifest, dirMode os.FileMode) map[string]os.FileInfo {
	t.Helper()
	staging := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".modelattest-partial")
	if err := os.MkdirAll(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	planted := map[string]os.FileInfo{}
	for _, l := range m.Layers {
		p := l.Annotations[modelspec.AnnotationFilepath]
		b, err := os.ReadFile(filepath.Join(src, p))
		if err != nil {
			t.Fatal(err)
		}
		blob := filepath.Join(staging, l.Digest.Encoded())
		if err := os.WriteFile(blob, b, 0o644); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Lstat(blob)
		planted[p] = fi
	}
	if err := os.Chmod(staging, dirMode); err != nil {
		t.Fatal(err)
	}
	return planted
}

// assertNotPlanted fails when an output file is the very file that was
// planted: whoever planted it could still change it.
func assertNotPlanted(t *testing.T, out string, planted map[string]os.FileInfo) {
	t.Helper()
	for p, fi := range planted {
		got, err := os.Lstat(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		if os.SameFile(fi, got) {
			t.Fatalf("%s in the output is the planted file (os.SameFile): it was trusted", p)
		}
	}
}

func TestTamperPull(t *testing.T) { tamperPull(t, newPullWorld(t, false)) }

// TestTamperPullTagSchema runs the same attacks against the CNCF
// distribution registry.
func TestTamperPullTagSchema(t *testing.T) { tamperPull(t, newPullWorld(t, true)) }

func tamperPull(t *testing.T, w *pullWorld) {
	root := os.Geteuid() == 0
	nobody := 65534

	t.Run("staging folder others can write is not resumed", func(t *testing.T) {
		ref, src, m := w.model(t, "pull/staging-open")
		out := filepath.Join(t.TempDir(), "model")
		planted := plantStaging(t, out, src, m, 0o777)
		w.proxy.Reset()
		msg, code := w.pull(t, ref, out)
		if code != 0 || !strings.Contains(msg, "not ours") || !strings.Contains(msg, "others can write it") {
			t.Fatalf("exit %d, want 0 with a warning that the staging folder is not ours\n%s", code, msg)
		}
		assertNotPlanted(t, out, planted)
		if n := w.blobGETs("pull/staging-open"); n < len(m.Layers) {
			t.Fatalf("%d blob GETs: the planted blobs were resumed", n)
		}
		regtest.SameContent(t, src, out)
	})
	t.Run("staging folder of another user is not resumed", func(t *testing.T) {
		if !root {
			t.Skip("needs root to make a folder owned by another user")
		}
		ref, src, m := w.model(t, "pull/staging-other")
		out := filepath.Join(t.TempDir(), "model")
		planted := plantStaging(t, out, src, m, 0o755)
		staging := filepath.Join(filepath.Dir(out), ".model.modelattest-partial")
		filepath.Walk(staging, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
		msg, code := w.pull(t, ref, out)
		if code != 0 || !strings.Contains(msg, "owned by uid 65534") {
			t.Fatalf("exit %d, want 0 with a warning naming the owner\n%s", code, msg)
		}
		assertNotPlanted(t, out, planted)
		regtest.SameContent(t, src, out)
	})
	t.Run("staged blob with a second link is not resumed", func(t *testing.T) {
		ref, src, m := w.model(t, "pull/staging-link")
		out := filepath.Join(t.TempDir(), "model")
		planted := plantStaging(t, out, src, m, 0o700)
		staging := filepath.Join(filepath.Dir(out), ".model.modelattest-partial")
		first := m.Layers[0]
		w8 := first.Digest.Encoded()
		p0 := first.Annotations[modelspec.AnnotationFilepath]
		planted = map[string]os.FileInfo{p0: planted[p0]}
		// A second name for the blob, kept outside the staging folder, could
		// rewrite the file after it was verified and renamed into place.
		if err := os.Link(filepath.Join(staging, w8), filepath.Join(t.TempDir(), "kept-link")); err != nil {
			t.Fatal(err)
		}
		msg, code := w.pull(t, ref, out)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, msg)
		}
		assertNotPlanted(t, out, planted)
		regtest.SameContent(t, src, out)
	})
	t.Run("present output file others can write is replaced", func(t *testing.T) {
		ref, src, _ := w.model(t, "pull/present-open")
		out := filepath.Join(t.TempDir(), "model")
		if msg, code := w.pull(t, ref, out); code != 0 {
			t.Fatalf("first pull: exit %d\n%s", code, msg)
		}
		weights := filepath.Join(out, "model.safetensors")
		os.Chmod(weights, 0o666)
		before, _ := os.Lstat(weights)
		planted := map[string]os.FileInfo{"model.safetensors": before}
		if root {
			os.Chmod(filepath.Join(out, "README.md"), 0o644)
			os.Lchown(filepath.Join(out, "README.md"), nobody, nobody)
			planted["README.md"], _ = os.Lstat(filepath.Join(out, "README.md"))
		}
		msg, code := w.pull(t, ref, out)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, msg)
		}
		for p := range planted {
			if !strings.Contains(msg, "downloaded  "+p) {
				t.Errorf("%s was trusted as present:\n%s", p, msg)
			}
		}
		assertNotPlanted(t, out, planted)
		regtest.SameTree(t, src, out)
	})
	t.Run("modes from annotations never group- or world-writable", func(t *testing.T) {
		for _, c := range []struct {
			name string
			mode os.FileMode
			want os.FileMode
		}{
			{"0777", 0o777, 0o755}, {"0666", 0o666, 0o644}, {"04777", 0o777 | os.ModeSetuid, 0o755},
		} {
			ref := w.crafted(t, "pull/mode-"+c.name, []string{"w.bin"}, fmt.Sprintf(`{"name":"w.bin","mode":%d}`, uint32(c.mode)))
			out := filepath.Join(t.TempDir(), "model")
			if msg, code := w.pull(t, ref, out); code != 0 {
				t.Fatalf("%s: exit %d\n%s", c.name, code, msg)
			}
			fi, err := os.Stat(filepath.Join(out, "w.bin"))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid); got != c.want {
				t.Errorf("annotation %s: pulled file mode %#o, want %#o", c.name, got, c.want)
			}
		}
	})
	t.Run("output directory with files that are not the model", func(t *testing.T) {
		ref, src, m := w.model(t, "pull/extra")
		out := filepath.Join(t.TempDir(), "model")
		plant := func() {
			os.MkdirAll(filepath.Join(out, ".git", "hooks"), 0o755)
			os.WriteFile(filepath.Join(out, ".git", "config"), []byte("[core]\n\tfsmonitor = touch /tmp/pwned\n"), 0o644)
			os.WriteFile(filepath.Join(out, "notes.txt"), []byte("unverified"), 0o644)
			os.MkdirAll(filepath.Join(out, "scripts"), 0o755)
			os.WriteFile(filepath.Join(out, "scripts", "evil.py"), []byte("import os"), 0o644)
		}
		plant()
		w.proxy.Reset()
		msg, code := w.pull(t, ref, out)
		if code != 1 || !strings.Contains(msg, "3 entries that are not part of the model: .git/, notes.txt, scripts/evil.py") ||
			!strings.Contains(msg, "--overwrite") || !strings.Contains(msg, "--keep-extra") {
			t.Fatalf("exit %d, want 1 naming the extra entries and the flags\n%s", code, msg)
		}
		if n := w.layerGETs("pull/extra", m); n != 0 {
			t.Errorf("%d blob GETs before refusing", n)
		}
		if msg, code := w.pull(t, ref, out, "--keep-extra"); code != 0 {
			t.Fatalf("--keep-extra: exit %d\n%s", code, msg)
		}
		if _, err := os.Stat(filepath.Join(out, "notes.txt")); err != nil {
			t.Fatalf("--keep-extra removed notes.txt: %v", err)
		}
		if msg, code := w.pull(t, ref, out, "--overwrite"); code != 0 {
			t.Fatalf("--overwrite: exit %d\n%s", code, msg)
		}
		regtest.SameTree(t, src, out)
		if _, err := os.Stat(filepath.Join(out, ".git")); !os.IsNotExist(err) {
			t.Fatalf("--overwrite left .git: %v", err)
		}
	})
	t.Run("verified pull leaves no unverified file beside the model", func(t *testing.T) {
		keys := keyDir(t)
		policy := writeKeyPolicy(t, keys, false)
		key := filepath.Join(keys, "cosign.key")
		ref, src, _ := w.model(t, "pull/verified-extra")
		ma(t, "sign", "--plain-http", "--key", key, ref)
		ma(t, "attest", "--plain-http", "--key", key, "--type", "slsaprovenance1", "--predicate", filepath.Join(keys, "provenance.json"), ref)
		out := filepath.Join(t.TempDir(), "model")
		os.MkdirAll(out, 0o755)
		os.WriteFile(filepath.Join(out, "tokenizer_config.json"), []byte(`{"chat_template":"{{ evil }}"}`), 0o644)
		msg, code := maCode(t, "pull", "--plain-http", "--no-progress", "--policy", policy, "-o", out, ref)
		if code != 1 || !strings.Contains(msg, "not part of the model: tokenizer_config.json") {
			t.Fatalf("exit %d, want 1 naming tokenizer_config.json\n%s", code, msg)
		}
		if msg, code := maCode(t, "pull", "--plain-http", "--no-progress", "--policy", policy, "--overwrite", "-o", out, ref); code != 0 {
			t.Fatalf("--overwrite: exit %d\n%s", code, msg)
		}
		regtest.SameTree(t, src, out)
	})
	t.Run("folder where a file must go is found before any download", func(t *testing.T) {
		ref, _, m := w.model(t, "pull/conflict")
		out := filepath.Join(t.TempDir(), "model")
		os.MkdirAll(filepath.Join(out, "model.safetensors"), 0o755)
		w.proxy.Reset()
		msg, code := w.pull(t, ref, out)
		if code != 1 || !strings.Contains(msg, "local path conflict") || !strings.Contains(msg, "model.safetensors is a folder") {
			t.Fatalf("exit %d, want 1 with a local path conflict\n%s", code, msg)
		}
		if n := w.layerGETs("pull/conflict", m); n != 0 {
			t.Fatalf("%d blob GETs before the conflict was found", n)
		}
		if got := regtest.Entries(t, filepath.Join(out, "model.safetensors")); len(got) != 0 {
			t.Fatalf("the folder in the way was changed: %v", got)
		}
	})
	for name, c := range map[string]struct {
		path, want string
	}{
		"path over MaxPathBytes": {strings.Repeat(strings.Repeat("p", 200)+"/", 6) + "w.bin", "over MaxPathBytes (1024)"},
		"path over MaxPathDepth": {strings.Repeat("d/", modelspec.MaxPathDepth) + "w.bin", "over MaxPathDepth (64)"},
	} {
		t.Run(name, func(t *testing.T) {
			ref := w.crafted(t, "pull/limit", []string{c.path}, "")
			out := filepath.Join(t.TempDir(), "model")
			w.proxy.Reset()
			msg, code := w.pull(t, ref, out)
			if code != 3 || !strings.Contains(msg, c.want) {
				t.Fatalf("exit %d, want 3 naming the limit %q\n%s", code, c.want, msg)
			}
			if n := w.blobGETs("pull/limit"); n != 0 {
				t.Fatalf("%d blob GETs", n)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatal("the output directory was created")
			}
		})
	}
	t.Run("failed pull leaves the output folder exactly as it was", func(t *testing.T) {
		ref, _, m := w.model(t, "pull/failed")
		out := filepath.Join(t.TempDir(), "model")
		os.MkdirAll(out, 0o755)
		os.WriteFile(filepath.Join(out, "README.md"), []byte("an older readme"), 0o644)
		before := regtest.Tree(t, out)
		weights := m.Layers[len(m.Layers)-3].Digest
		w.proxy.SetTamper(func(r *http.Request, b []byte) []byte {
			if strings.HasSuffix(r.URL.Path, "/blobs/"+weights.String()) && len(b) > 0 {
				b[0] ^= 1
			}
			return b
		})
		defer w.proxy.SetTamper(nil)
		msg, code := w.pull(t, ref, out)
		if code != 3 {
			t.Fatalf("exit %d, want 3\n%s", code, msg)
		}
		if after := regtest.Tree(t, out); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("output changed by a failed pull: %v", after)
		}
	})
}
