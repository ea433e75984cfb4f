package modelspec

import "testing"

func TestKindOf(t *testing.T) {
	tests := []struct {
		path string
		want Kind
	}{
		{"model.safetensors", KindWeight},
		{"shards/model-00001-of-00002.safetensors", KindWeight},
		{"llama-3-8b.Q4_K_M.gguf", KindWeight},
		{"pytorch_model.bin", KindWeight},
		{"model.onnx", KindWeight},
		{"weights.PT", KindWeight},
		{"config.json", KindWeightConfig},
		{"generation_config.json", KindWeightConfig},
		{"tokenizer.json", KindWeightConfig},
		{"tokenizer_config.json", KindWeightConfig},
		{"tokenizer.model", KindWeightConfig},
		{"model.safetensors.index.json", KindWeightConfig},
		{"vocab.txt", KindWeightConfig},
		{"merges.txt", KindWeightConfig},
		{"special_tokens_map.json", KindWeightConfig},
		{"adapter_config.json", KindWeightConfig},
		{"preprocessor_config.json", KindWeightConfig},
		{"cl100k_base.tiktoken", KindWeightConfig},
		{"chat_template.jinja", KindWeightConfig},
		{"adapter_model.safetensors", KindWeight},
		{"notes.txt", KindDoc},
		{"README.md", KindDoc},
		{"LICENSE", KindDoc},
		{"docs/usage.md", KindDoc},
		{"modeling_llama.py", KindCode},
		{"data/train.parquet", KindDataset},
		{"something.unknown", KindDoc},
	}
	for _, tt := range tests {
		if got := KindOf(tt.path); got != tt.want {
			t.Errorf("KindOf(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestParseLayerMediaType(t *testing.T) {
	tests := []struct {
		mt     string
		kind   Kind
		format layerFormat
		ok     bool
	}{
		{"application/vnd.cncf.model.weight.v1.raw", KindWeight, formatRaw, true},
		{"application/vnd.cncf.model.weight.config.v1.raw", KindWeightConfig, formatRaw, true},
		{"application/vnd.cncf.model.doc.v1.tar", KindDoc, formatTar, true},
		{"application/vnd.cncf.model.dataset.v1.tar+gzip", KindDataset, formatTarGzip, true},
		{"application/vnd.cncf.model.code.v1.tar+zstd", KindCode, formatTarZstd, true},
		{"application/vnd.cnai.model.weight.v1.raw", KindWeight, formatRaw, true},
		{"application/vnd.cnai.model.weight.v1.tar", KindWeight, formatTar, true},
		{"application/vnd.kitops.modelkit.model.v1.tar+gzip", KindWeight, formatTarGzip, true},
		{"application/vnd.kitops.modelkit.docs.v1.tar", KindDoc, formatTar, true},
		{"application/vnd.docker.ai.gguf.v3", KindWeight, formatRaw, true},
		{"application/vnd.docker.ai.license", KindDoc, formatRaw, true},
		{"application/vnd.docker.ai.vllm.config.tar", KindWeightConfig, formatTar, true},
		{"application/vnd.cncf.model.evil.v1.raw", "", 0, false},
		{"application/vnd.cncf.model.weight.v1.rar", "", 0, false},
		{"application/vnd.oci.image.layer.v1.tar+gzip", "", 0, false},
		{"application/vnd.kitops.modelkit.config.v1+json", "", 0, false},
	}
	for _, tt := range tests {
		k, f, ok := parseLayerMediaType(tt.mt)
		if ok != tt.ok || k != tt.kind || f != tt.format {
			t.Errorf("parseLayerMediaType(%q) = %q, %v, %v; want %q, %v, %v", tt.mt, k, f, ok, tt.kind, tt.format, tt.ok)
		}
	}
}

func TestKindMediaTypeRoundTrip(t *testing.T) {
	for _, k := range Kinds {
		got, f, ok := parseLayerMediaType(k.MediaType())
		if !ok || got != k || f != formatRaw {
			t.Errorf("%s: parsed back as %q %v %v", k.MediaType(), got, f, ok)
		}
	}
}
