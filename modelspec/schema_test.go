package modelspec

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestConfigMatchesModelPackSchema: every config we write is valid against
// the ModelPack config schema (testdata/modelpack-config.schema.json), and
// the schema would catch what the Go types could get wrong.
func TestConfigMatchesModelPackSchema(t *testing.T) {
	raw, err := os.ReadFile("testdata/modelpack-config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("config.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("config.json")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(b []byte) error {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return err
		}
		return schema.Validate(v)
	}
	d := []digest.Digest{digest.FromString("a"), digest.FromString("b")}
	for name, cfg := range map[string]Config{
		"minimal": NewConfig(Metadata{}, time.Time{}, d[:1]),
		"full": NewConfig(Metadata{Name: "llama", Version: "3.1", Family: "llama3", Architecture: "transformer",
			Format: "safetensors", ParamSize: "8b", Precision: "bf16", Quantization: "awq", Licenses: []string{"llama3.1"},
			Authors: []string{"Meta"}, SourceURL: "https://example/llama", Revision: "abc", Vendor: "Meta",
			Title: "Llama", Description: "d", DocURL: "https://example/doc"}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), d),
	} {
		b, err := MarshalConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate(b); err != nil {
			t.Errorf("%s: %v\n%s", name, err, b)
		}
	}
	for name, b := range map[string]string{
		"extra key":  `{"descriptor":{},"config":{},"modelfs":{"type":"layers","diffIds":["` + d[0].String() + `"]},"extra":1}`,
		"no diffIds": `{"descriptor":{},"config":{},"modelfs":{"type":"layers","diffIds":[]}}`,
		"bad time":   `{"descriptor":{"createdAt":"yesterday"},"config":{},"modelfs":{"type":"layers","diffIds":["` + d[0].String() + `"]}}`,
	} {
		if validate([]byte(b)) == nil {
			t.Errorf("%s: the schema accepted it", name)
		}
	}
}
