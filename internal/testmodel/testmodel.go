// Package testmodel writes Hugging Face-style model folders for tests:
// real safetensors headers over sparse files (the weights are never
// written), shard indexes, config and tokenizer files.
package testmodel

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Tensor is one tensor of a safetensors header.
type Tensor struct {
	Name  string
	Dtype string
	Shape []uint64
}

var dtypeBytes = map[string]uint64{"BF16": 2, "F16": 2, "F32": 4, "I32": 4, "U32": 4, "U8": 1, "I8": 1, "I64": 8}

// WriteSafetensors writes a safetensors file with a real header and, as a
// sparse file, room for the data it describes.
func WriteSafetensors(t testing.TB, name string, ts []Tensor) {
	t.Helper()
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off uint64
	for _, x := range ts {
		n := dtypeBytes[x.Dtype]
		for _, s := range x.Shape {
			n *= s
		}
		hdr[x.Name] = map[string]any{"dtype": x.Dtype, "shape": x.Shape, "data_offsets": []uint64{off, off + n}}
		off += n
	}
	b, err := json.Marshal(hdr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var l [8]byte
	binary.LittleEndian.PutUint64(l[:], uint64(len(b)))
	if _, err := f.Write(append(l[:], b...)); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(8 + uint64(len(b)) + off)); err != nil {
		t.Fatal(err)
	}
}

// LlamaLayers returns the bf16 tensors of decoder layers first…first+n-1 of
// a Llama-shaped model with grouped-query attention (kv: the width of the
// key and value projections).
func LlamaLayers(first, n int, hidden, inter, kv uint64) []Tensor {
	var ts []Tensor
	for i := first; i < first+n; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts,
			Tensor{p + "self_attn.q_proj.weight", "BF16", []uint64{hidden, hidden}},
			Tensor{p + "self_attn.k_proj.weight", "BF16", []uint64{kv, hidden}},
			Tensor{p + "self_attn.v_proj.weight", "BF16", []uint64{kv, hidden}},
			Tensor{p + "self_attn.o_proj.weight", "BF16", []uint64{hidden, hidden}},
			Tensor{p + "mlp.gate_proj.weight", "BF16", []uint64{inter, hidden}},
			Tensor{p + "mlp.up_proj.weight", "BF16", []uint64{inter, hidden}},
			Tensor{p + "mlp.down_proj.weight", "BF16", []uint64{hidden, inter}},
			Tensor{p + "input_layernorm.weight", "BF16", []uint64{hidden}},
			Tensor{p + "post_attention_layernorm.weight", "BF16", []uint64{hidden}},
		)
	}
	return ts
}

// Shape is the size of a Llama-shaped model.
type Shape struct {
	Shards, LayersPerShard   int
	Vocab, Hidden, Inter, KV uint64
}

// HFModel writes a Hugging Face model folder into dir: config.json (the
// given text), shards model-0000N-of-0000M.safetensors with
// model.safetensors.index.json, and tokenizer files. It returns the
// parameter count.
func HFModel(t testing.TB, dir string, s Shape, config string) uint64 {
	t.Helper()
	weightMap := map[string]string{}
	var total uint64
	for i := 0; i < s.Shards; i++ {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, s.Shards)
		ts := LlamaLayers(i*s.LayersPerShard, s.LayersPerShard, s.Hidden, s.Inter, s.KV)
		if i == 0 {
			ts = append(ts, Tensor{"model.embed_tokens.weight", "BF16", []uint64{s.Vocab, s.Hidden}})
		}
		if i == s.Shards-1 {
			ts = append(ts, Tensor{"model.norm.weight", "BF16", []uint64{s.Hidden}},
				Tensor{"lm_head.weight", "BF16", []uint64{s.Vocab, s.Hidden}})
		}
		for _, x := range ts {
			n := uint64(1)
			for _, d := range x.Shape {
				n *= d
			}
			total += n
			weightMap[x.Name] = name
		}
		WriteSafetensors(t, filepath.Join(dir, name), ts)
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	files := map[string]string{
		"model.safetensors.index.json": string(idx),
		"config.json":                  config,
		"tokenizer.json":               `{"version":"1.0"}`,
		"tokenizer_config.json":        `{}`,
		"special_tokens_map.json":      `{}`,
		"generation_config.json":       `{}`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return total
}
