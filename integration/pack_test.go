package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/testmodel"
	"github.com/modelattest/modelattest/modelspec"
)

// maJSON runs the CLI and decodes its standard output (warnings on
// standard error stay out of the JSON).
func maJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	cmd := exec.Command(modelattest, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("modelattest %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("modelattest %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type inspected struct {
	Content struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"manifest"`
	Config *modelspec.Config `json:"config"`
	Files  []struct {
		Path string `json:"path"`
		Kind string `json:"kind"`
		Mode string `json:"mode"`
	} `json:"files"`
}

// TestPackHuggingFaceFolder: a Hugging Face folder made here (config.json,
// three safetensors shards with an index, tokenizer files, and the litter a
// git clone and a notebook leave) packs with family, architecture,
// precision and paramSize read from config.json and the shards' headers;
// the litter, .modelattestignore and --exclude patterns stay out; inspect
// says where each field came from; a flag wins over what was read.
func TestPackHuggingFaceFolder(t *testing.T) {
	dir := t.TempDir()
	total := testmodel.HFModel(t, dir, testmodel.Shape{Shards: 3, LayersPerShard: 2, Vocab: 1000, Hidden: 64, Inter: 172, KV: 16},
		`{"model_type":"llama","architectures":["LlamaForCausalLM"],"torch_dtype":"bfloat16"}`)
	if total != 388416 {
		t.Fatalf("fixture has %d parameters", total)
	}
	litter := map[string]string{
		".git/HEAD": "ref: refs/heads/main", ".gitattributes": "*.safetensors filter=lfs", ".DS_Store": "x",
		"__pycache__/modeling.cpython-312.pyc": "x", ".ipynb_checkpoints/eval-checkpoint.ipynb": "{}",
		".cache/huggingface/download/config.json.metadata": "x", "logs/run1.log": "x", "eval/scores.json": "{}",
		".modelattestignore": "logs/\n", "README.md": "# tiny llama\n",
	}
	for p, c := range litter {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
	}
	layout := filepath.Join(t.TempDir(), "oci")
	ma(t, "pack", "--no-progress", "--exclude", "eval/", dir, "-o", layout+":v1")

	var got inspected
	maJSON(t, &got, "inspect", "--format", "json", "--oci-layout", layout+":v1")
	c := got.Config.Config
	if got.Config.Descriptor.Family != "llama" || c.Architecture != "transformer" || c.Precision != "bf16" ||
		c.ParamSize != "388K" || c.Format != "safetensors" {
		t.Errorf("config %+v, family %q", c, got.Config.Descriptor.Family)
	}
	var paths []string
	for _, f := range got.Files {
		paths = append(paths, f.Path)
		if f.Mode != "0644" {
			t.Errorf("%s: mode %q, want 0644", f.Path, f.Mode)
		}
		if f.Path == "special_tokens_map.json" && f.Kind != "weight.config" {
			t.Errorf("special_tokens_map.json is %s", f.Kind)
		}
	}
	want := []string{"README.md", "config.json", "generation_config.json", "model-00001-of-00003.safetensors",
		"model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json",
		"special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"}
	if !slices.Equal(paths, want) {
		t.Errorf("packed %v\nwant   %v", paths, want)
	}
	if a := got.Content.Annotations[modelspec.AnnotationArchitectures]; a != "LlamaForCausalLM" {
		t.Errorf("architectures annotation %q", a)
	}

	text := ma(t, "inspect", "--oci-layout", layout+":v1")
	for _, w := range []string{"Precision:     bf16   (from config.json torch_dtype)",
		"Parameters:    388K   (from safetensors headers of model-00001-of-00003.safetensors and 2 more)",
		"Architecture:  transformer [LlamaForCausalLM]   (from config.json architectures)"} {
		if !strings.Contains(text, w) {
			t.Errorf("inspect does not say %q:\n%s", w, text)
		}
	}

	// A flag wins over the folder, and its source is not claimed.
	ma(t, "pack", "--no-progress", "--precision", "fp16", dir, "-o", layout+":v2")
	maJSON(t, &got, "inspect", "--format", "json", "--oci-layout", layout+":v2")
	if got.Config.Config.Precision != "fp16" || strings.Contains(got.Content.Annotations[modelspec.AnnotationMetadataSources], "precision") {
		t.Errorf("--precision fp16: config %+v, sources %s", got.Config.Config, got.Content.Annotations[modelspec.AnnotationMetadataSources])
	}
}

// TestPackDereference: a Hugging Face cache snapshot (links into blobs/)
// is refused with an error naming --dereference, and packs with it.
func TestPackDereference(t *testing.T) {
	cache := t.TempDir()
	os.MkdirAll(filepath.Join(cache, "blobs"), 0o755)
	snap := filepath.Join(cache, "snapshots", "3f1c2e")
	os.MkdirAll(snap, 0o755)
	for name, body := range map[string]string{"config.json": `{"model_type":"gpt2","architectures":["GPT2LMHeadModel"]}`, "model.safetensors": "weights"} {
		blob := filepath.Join(cache, "blobs", name+".blob")
		os.WriteFile(blob, []byte(body), 0o644)
		os.Symlink(filepath.Join("..", "..", "blobs", name+".blob"), filepath.Join(snap, name))
	}
	layout := filepath.Join(t.TempDir(), "oci")
	out, code := maCode(t, "pack", "--no-progress", snap, "-o", layout)
	if code != 1 || !strings.Contains(out, "--dereference") || !strings.Contains(out, `"config.json"`) {
		t.Fatalf("without --dereference: exit %d\n%s", code, out)
	}
	ma(t, "pack", "--no-progress", "--dereference", snap, "-o", layout+":v1")
	var got inspected
	maJSON(t, &got, "inspect", "--format", "json", "--oci-layout", layout+":v1")
	if len(got.Files) != 2 || got.Config.Descriptor.Family != "gpt2" {
		t.Fatalf("packed %+v", got)
	}
}
