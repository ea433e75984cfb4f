package modelspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"sigs.k8s.io/yaml"
)

// Config is the ModelPack model config (application/vnd.cncf.model.config.v1+json).
type Config struct {
	Descriptor ModelDescriptor `json:"descriptor"`
	Config     ModelConfig     `json:"config"`
	ModelFS    ModelFS         `json:"modelfs"`
}

// ModelDescriptor is the general information about a model.
type ModelDescriptor struct {
	CreatedAt   *time.Time `json:"createdAt,omitempty"`
	Authors     []string   `json:"authors,omitempty"`
	Family      string     `json:"family,omitempty"`
	Name        string     `json:"name,omitempty"`
	DocURL      string     `json:"docURL,omitempty"`
	SourceURL   string     `json:"sourceURL,omitempty"`
	DatasetsURL []string   `json:"datasetsURL,omitempty"`
	Version     string     `json:"version,omitempty"`
	Revision    string     `json:"revision,omitempty"`
	Vendor      string     `json:"vendor,omitempty"`
	Licenses    []string   `json:"licenses,omitempty"`
	Title       string     `json:"title,omitempty"`
	Description string     `json:"description,omitempty"`
}

// ModelConfig is the technical metadata of a model.
type ModelConfig struct {
	Architecture string `json:"architecture,omitempty"`
	Format       string `json:"format,omitempty"`
	ParamSize    string `json:"paramSize,omitempty"`
	Precision    string `json:"precision,omitempty"`
	Quantization string `json:"quantization,omitempty"`
}

// ModelFS lists the layers' DiffIDs in layer order. For raw layers the
// DiffID is the layer digest.
type ModelFS struct {
	Type    string          `json:"type"`
	DiffIDs []digest.Digest `json:"diffIds"`
}

// Metadata is what a user says about a model when packing it: the fields of
// the ModelPack config that are not derived from the files.
type Metadata struct {
	Name         string   `json:"name,omitempty"`
	Version      string   `json:"version,omitempty"`
	Family       string   `json:"family,omitempty"`
	Architecture string   `json:"architecture,omitempty"`
	Format       string   `json:"format,omitempty"`
	ParamSize    string   `json:"paramSize,omitempty"`
	Precision    string   `json:"precision,omitempty"`
	Quantization string   `json:"quantization,omitempty"`
	Licenses     []string `json:"licenses,omitempty"`
	Authors      []string `json:"authors,omitempty"`
	SourceURL    string   `json:"sourceURL,omitempty"`
	Revision     string   `json:"revision,omitempty"`
	Vendor       string   `json:"vendor,omitempty"`
	Title        string   `json:"title,omitempty"`
	Description  string   `json:"description,omitempty"`
	DocURL       string   `json:"docURL,omitempty"`
}

// LoadMetadata reads model metadata from a YAML or JSON file. Unknown keys
// are an error, so a typo does not silently drop a field.
func LoadMetadata(file string) (Metadata, error) {
	var m Metadata
	b, err := os.ReadFile(file)
	if err != nil {
		return m, fmt.Errorf("model metadata: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return m, fmt.Errorf("model metadata %s: %w", file, err)
	}
	return m, nil
}

// NewConfig builds the config for a model with the given metadata, creation
// time (zero: omitted, for reproducible artifacts) and layer DiffIDs.
func NewConfig(meta Metadata, created time.Time, diffIDs []digest.Digest) Config {
	c := Config{
		Descriptor: ModelDescriptor{
			Authors: meta.Authors, Family: meta.Family, Name: meta.Name,
			DocURL: meta.DocURL, SourceURL: meta.SourceURL, Version: meta.Version,
			Revision: meta.Revision, Vendor: meta.Vendor, Licenses: meta.Licenses,
			Title: meta.Title, Description: meta.Description,
		},
		Config: ModelConfig{
			Architecture: meta.Architecture, Format: meta.Format, ParamSize: meta.ParamSize,
			Precision: meta.Precision, Quantization: meta.Quantization,
		},
		ModelFS: ModelFS{Type: "layers", DiffIDs: diffIDs},
	}
	if !created.IsZero() {
		t := created.UTC()
		c.Descriptor.CreatedAt = &t
	}
	return c
}

// Validate checks the constraints of the ModelPack config schema that the Go
// types cannot express.
func (c *Config) Validate() error {
	if c.ModelFS.Type != "layers" {
		return fmt.Errorf("model config: modelfs.type %q, want %q", c.ModelFS.Type, "layers")
	}
	if len(c.ModelFS.DiffIDs) == 0 {
		return fmt.Errorf("model config: modelfs.diffIds is empty")
	}
	for i, d := range c.ModelFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("model config: modelfs.diffIds[%d]: %w", i, err)
		}
	}
	return nil
}

// ParseConfig decodes a model config strictly: unknown keys, at the top level
// or inside, are refused as the schema's additionalProperties:false says.
func ParseConfig(b []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("model config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// MarshalConfig encodes c in its canonical form.
func MarshalConfig(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// ParseCreated reads a creation time as RFC 3339 or as seconds since the
// epoch (the form of SOURCE_DATE_EPOCH).
func ParseCreated(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	var secs int64
	if _, err := fmt.Sscanf(s, "%d", &secs); err == nil && fmt.Sprint(secs) == s {
		return time.Unix(secs, 0).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("creation time %q: want RFC 3339 or seconds since the epoch", s)
}
