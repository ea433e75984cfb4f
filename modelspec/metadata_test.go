package modelspec

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/testmodel"
)

// TestDetectMetadataHuggingFace: an HF folder with sharded safetensors, an
// index, a consolidated copy the index does not list, and tokenizer files
// gives family, architecture, precision and paramSize from config.json and
// the headers; what the caller set wins.
func TestDetectMetadataHuggingFace(t *testing.T) {
	dir := t.TempDir()
	total := testmodel.HFModel(t, dir, testmodel.Shape{Shards: 3, LayersPerShard: 2, Vocab: 1000, Hidden: 64, Inter: 172, KV: 16},
		`{"model_type":"llama","architectures":["LlamaForCausalLM"],"torch_dtype":"bfloat16","hidden_size":64}`)
	// A consolidated copy of the same tensors: not counted twice.
	testmodel.WriteSafetensors(t, filepath.Join(dir, "consolidated.safetensors"), testmodel.LlamaLayers(0, 6, 64, 172, 16))
	files, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := DetectMetadata(files)
	if len(d.Warnings) > 0 {
		t.Fatalf("warnings: %v", d.Warnings)
	}
	want := Metadata{Family: "llama", Architecture: "transformer", Precision: "bf16", Format: "safetensors",
		ParamSize: FormatParamCount(new(big.Int).SetUint64(total))}
	if !reflect.DeepEqual(d.Metadata, want) {
		t.Fatalf("detected %+v\nwant     %+v", d.Metadata, want)
	}
	if total != 388416 || want.ParamSize != "388K" {
		t.Fatalf("fixture counts %d (%s), want 388416", total, want.ParamSize)
	}
	if d.Annotations[AnnotationArchitectures] != "LlamaForCausalLM" {
		t.Errorf("architectures annotation %q", d.Annotations[AnnotationArchitectures])
	}
	if !strings.Contains(d.Sources["paramSize"], "model-00001-of-00003.safetensors and 2 more") ||
		d.Sources["precision"] != "config.json torch_dtype" || d.Sources["family"] != "config.json model_type" {
		t.Errorf("sources %v", d.Sources)
	}
	m, ann := d.Apply(Metadata{Family: "llama3", Name: "x"})
	if m.Family != "llama3" || m.Architecture != "transformer" || m.Name != "x" {
		t.Errorf("Apply: %+v", m)
	}
	var used map[string]string
	if err := json.Unmarshal([]byte(ann[AnnotationMetadataSources]), &used); err != nil || used["family"] != "" || used["architecture"] == "" {
		t.Errorf("sources annotation %q (%v): family was the caller's", ann[AnnotationMetadataSources], err)
	}
}

// TestDetectMetadataMistralShapes: the real Mistral-7B shapes count
// 7,241,732,096 parameters, "7.24B", read from headers of a sparse 14 GB
// folder.
func TestDetectMetadataMistralShapes(t *testing.T) {
	dir := t.TempDir()
	total := testmodel.HFModel(t, dir, testmodel.Shape{Shards: 2, LayersPerShard: 16, Vocab: 32000, Hidden: 4096, Inter: 14336, KV: 1024}, `{"model_type":"mistral","architectures":["MistralForCausalLM"],"dtype":"bfloat16"}`)
	files, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := DetectMetadata(files)
	if total != 7241732096 || d.Metadata.ParamSize != "7.24B" || d.Metadata.Precision != "bf16" || d.Sources["precision"] != "config.json dtype" {
		t.Fatalf("total %d, detected %+v %v", total, d.Metadata, d.Sources)
	}
}

func TestDetectMetadataOthers(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		weights map[string][]testmodel.Tensor
		gguf    string
		want    Metadata
		ann     map[string]string
		warn    string
	}{
		{
			name: "quantized: no paramSize from packed tensors",
			files: map[string]string{"config.json": `{"model_type":"llama","architectures":["LlamaForCausalLM"],"torch_dtype":"float16",
				"quantization_config":{"quant_method":"awq","bits":4}}`},
			weights: map[string][]testmodel.Tensor{"model.safetensors": {{Name: "q.qweight", Dtype: "I32", Shape: []uint64{64, 8}}, {Name: "q.scales", Dtype: "F16", Shape: []uint64{64}}}},
			want:    Metadata{Family: "llama", Architecture: "transformer", Precision: "fp16", Quantization: "awq-4bit", Format: "safetensors"},
			ann:     map[string]string{AnnotationArchitectures: "LlamaForCausalLM"},
		},
		{
			name:    "packed uint8 without a quantization_config",
			weights: map[string][]testmodel.Tensor{"model.safetensors": {{Name: "w", Dtype: "U8", Shape: []uint64{64, 8}}, {Name: "s", Dtype: "F32", Shape: []uint64{64}}}},
			want:    Metadata{Format: "safetensors"},
		},
		{
			name:    "headers alone: count and one dtype",
			weights: map[string][]testmodel.Tensor{"model.safetensors": {{Name: "w", Dtype: "F32", Shape: []uint64{1000, 1000}}, {Name: "b", Dtype: "F32", Shape: []uint64{1000}}}},
			want:    Metadata{Format: "safetensors", ParamSize: "1.00M", Precision: "fp32"},
		},
		{
			name:  "mamba is not a transformer",
			files: map[string]string{"config.json": `{"model_type":"mamba","architectures":["MambaForCausalLM"]}`},
			want:  Metadata{Family: "mamba", Architecture: "mamba"},
			ann:   map[string]string{AnnotationArchitectures: "MambaForCausalLM"},
		},
		{
			name:  "MLflow flavors",
			files: map[string]string{"MLmodel": "artifact_path: model\nflavors:\n  transformers:\n    task: text-generation\n  python_function:\n    loader_module: mlflow.transformers\n"},
			ann:   map[string]string{AnnotationMLflowFlavors: "python_function,transformers"},
		},
		{
			name: "GGUF",
			gguf: "llama",
			want: Metadata{Family: "llama", Architecture: "transformer", Quantization: "Q4_K_M", ParamSize: "4.10K", Format: "gguf"},
		},
		{
			name:  "broken config.json is a warning",
			files: map[string]string{"config.json": `{"model_type":`},
			warn:  "config.json",
		},
		{
			name:  "safetensors header over the bound",
			files: map[string]string{"model.safetensors": "\xff\xff\xff\xff\xff\xff\xff\x7f{}"},
			want:  Metadata{Format: "safetensors"},
			warn:  "bound",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tt.files {
				os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
			}
			for n, ts := range tt.weights {
				testmodel.WriteSafetensors(t, filepath.Join(dir, n), ts)
			}
			if tt.gguf != "" {
				writeGGUF(t, filepath.Join(dir, "m.Q4_K_M.gguf"), tt.gguf, 15)
			}
			files, err := Scan(dir)
			if err != nil {
				t.Fatal(err)
			}
			d := DetectMetadata(files)
			if !reflect.DeepEqual(d.Metadata, tt.want) {
				t.Errorf("detected %+v\nwant     %+v", d.Metadata, tt.want)
			}
			for k, v := range tt.ann {
				if d.Annotations[k] != v {
					t.Errorf("annotation %s = %q, want %q", k, d.Annotations[k], v)
				}
			}
			if w := strings.Join(d.Warnings, "; "); (tt.warn == "") != (w == "") || !strings.Contains(w, tt.warn) {
				t.Errorf("warnings %q, want one containing %q", w, tt.warn)
			}
		})
	}
}

// writeGGUF writes a GGUF v3 header: general.architecture, general.name,
// general.file_type, a tokenizer array (skipped by the reader) and two
// tensor infos of 64×64 and 4 elements.
func writeGGUF(t *testing.T, name, arch string, fileType uint32) {
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	u64 := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	str := func(s string) { u64(uint64(len(s))); b = append(b, s...) }
	b = append(b, "GGUF"...)
	u32(3)
	u64(2) // tensors
	u64(4) // key-values
	str("general.architecture")
	u32(ggufString)
	str(arch)
	str("general.name")
	u32(ggufString)
	str("tiny")
	str("tokenizer.ggml.tokens")
	u32(ggufArray)
	u32(ggufString)
	u64(3)
	str("a")
	str("b")
	str("c")
	str("general.file_type")
	u32(ggufUint32)
	u32(fileType)
	for i, dims := range [][]uint64{{64, 64}, {4}} {
		str(fmt.Sprintf("t%d", i))
		u32(uint32(len(dims)))
		for _, d := range dims {
			u64(d)
		}
		u32(12) // Q4_K
		u64(0)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFormatParamCount(t *testing.T) {
	tests := map[uint64]string{
		0: "", 999: "999", 1000: "1.00K", 219136: "219K", 7241732096: "7.24B", 999_600_000: "1.00B",
		70_553_706_496: "70.6B", 1_234_567_890_123: "1.23T", 12_345: "12.3K", 99_950: "100K",
	}
	for n, want := range tests {
		if got := FormatParamCount(new(big.Int).SetUint64(n)); got != want {
			t.Errorf("FormatParamCount(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkDetectMetadata10GiB: metadata of a 10 GiB sparse safetensors
// folder (4 shards and an index) is read from headers only.
func BenchmarkDetectMetadata10GiB(b *testing.B) {
	dir := b.TempDir()
	testmodel.HFModel(b, dir, testmodel.Shape{Shards: 4, LayersPerShard: 6, Vocab: 32000, Hidden: 4096, Inter: 14336, KV: 1024}, `{"model_type":"mistral","architectures":["MistralForCausalLM"],"torch_dtype":"bfloat16"}`)
	files, err := Scan(dir)
	if err != nil {
		b.Fatal(err)
	}
	var size int64
	for _, f := range files {
		size += f.Size
	}
	if size < 10<<30 {
		b.Fatalf("folder is %d bytes, want 10 GiB", size)
	}
	b.ResetTimer()
	for b.Loop() {
		if d := DetectMetadata(files); d.Metadata.ParamSize == "" {
			b.Fatal("no paramSize")
		}
	}
}
