package modelspec

import (
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Manifest annotations written from what DetectMetadata found.
const (
	// AnnotationArchitectures holds the Hugging Face architecture class
	// names of config.json (comma-separated), such as "LlamaForCausalLM".
	AnnotationArchitectures = "io.github.modelattest.model.architectures"
	// AnnotationMLflowFlavors holds the flavors of an MLflow MLmodel file
	// (comma-separated), such as "python_function,transformers".
	AnnotationMLflowFlavors = "io.github.modelattest.model.mlflow.flavors"
	// AnnotationMetadataSources says which config field was read from which
	// file (JSON object: field → source), so inspect can show it.
	AnnotationMetadataSources = "io.github.modelattest.model.metadata.sources"
)

// MaxSafetensorsHeader bounds the JSON header read from one safetensors
// file. Real headers are well below a megabyte; a length field claiming
// more is a damaged or hostile file, and no weights are ever read.
const MaxSafetensorsHeader = 100 << 20

// Detected is the metadata read from a model folder's files.
type Detected struct {
	// Metadata holds the fields found; the others are empty.
	Metadata Metadata
	// Sources maps each filled field (its JSON name: "family",
	// "architecture", "paramSize", …) to the file and key it came from.
	Sources map[string]string
	// Annotations are manifest annotations found (architecture class names,
	// MLflow flavors).
	Annotations map[string]string
	// Warnings name files that looked like metadata but could not be read.
	// A model folder is packed whatever they hold.
	Warnings []string
}

// DetectMetadata reads what a model folder says about itself, with no
// network and without reading weights: Hugging Face config.json (family,
// architecture, precision, quantization), safetensors headers (parameter
// count), GGUF headers (family, architecture, quantization or precision,
// parameter count) and MLflow MLmodel files (flavors). files are as Scan
// returned them.
func DetectMetadata(files []File) Detected {
	d := Detected{Sources: map[string]string{}, Annotations: map[string]string{}}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	quantized := false
	if f, ok := byPath["config.json"]; ok {
		quantized = d.readHFConfig(f)
	}
	if f, ok := byPath["MLmodel"]; ok {
		d.readMLmodel(f)
	}
	d.readSafetensors(files, quantized)
	d.readGGUF(files)
	if d.Metadata.Format == "" {
		for _, f := range files {
			if f.Kind != KindWeight {
				continue
			}
			switch path.Ext(f.Path) {
			case ".safetensors":
				d.set("format", &d.Metadata.Format, "safetensors", f.Path)
			case ".gguf":
				d.set("format", &d.Metadata.Format, "gguf", f.Path)
			case ".onnx":
				d.set("format", &d.Metadata.Format, "onnx", f.Path)
			}
		}
	}
	return d
}

// set fills *dst from src unless it is filled already: the first source
// read wins (config.json before the weights' headers).
func (d *Detected) set(field string, dst *string, v, src string) {
	if *dst != "" || v == "" {
		return
	}
	*dst = v
	d.Sources[field] = src
}

func (d *Detected) warn(f File, err error) {
	d.Warnings = append(d.Warnings, fmt.Sprintf("%s: %v (metadata not read from it)", f.Path, err))
}

// hfConfig is the part of a Hugging Face config.json that says what the
// model is.
type hfConfig struct {
	ModelType          string          `json:"model_type"`
	Architectures      []string        `json:"architectures"`
	TorchDtype         string          `json:"torch_dtype"`
	Dtype              string          `json:"dtype"`
	QuantizationConfig json.RawMessage `json:"quantization_config"`
}

// notTransformers are the Hugging Face model types whose architecture is
// not a transformer; every other model_type with architectures is one.
var notTransformers = map[string]string{
	"mamba": "mamba", "mamba2": "mamba", "falcon_mamba": "mamba", "rwkv": "rwkv", "xlstm": "xlstm",
}

// readHFConfig fills family, architecture, precision and quantization from
// config.json. It reports whether the weights are quantized.
func (d *Detected) readHFConfig(f File) (quantized bool) {
	b, err := readSmall(f, 16<<20)
	if err != nil {
		d.warn(f, err)
		return false
	}
	var c hfConfig
	if err := json.Unmarshal(b, &c); err != nil {
		d.warn(f, err)
		return false
	}
	if c.ModelType != "" {
		d.set("family", &d.Metadata.Family, c.ModelType, f.Path+" model_type")
	}
	if len(c.Architectures) > 0 {
		arch := "transformer"
		if a, ok := notTransformers[c.ModelType]; ok {
			arch = a
		}
		d.set("architecture", &d.Metadata.Architecture, arch, f.Path+" architectures")
		d.Annotations[AnnotationArchitectures] = strings.Join(c.Architectures, ",")
	}
	dtype, key := c.Dtype, "dtype"
	if dtype == "" {
		dtype, key = c.TorchDtype, "torch_dtype"
	}
	d.set("precision", &d.Metadata.Precision, precisionName(dtype), f.Path+" "+key)
	if len(c.QuantizationConfig) > 0 && string(c.QuantizationConfig) != "null" {
		var q struct {
			QuantMethod string `json:"quant_method"`
			Bits        int    `json:"bits"`
			LoadIn4bit  bool   `json:"load_in_4bit"`
			LoadIn8bit  bool   `json:"load_in_8bit"`
		}
		_ = json.Unmarshal(c.QuantizationConfig, &q)
		name := strings.ToLower(q.QuantMethod)
		switch {
		case name == "":
			name = "unknown"
		case q.Bits > 0:
			name += "-" + strconv.Itoa(q.Bits) + "bit"
		case q.LoadIn4bit:
			name += "-4bit"
		case q.LoadIn8bit:
			name += "-8bit"
		}
		d.set("quantization", &d.Metadata.Quantization, name, f.Path+" quantization_config")
		return true
	}
	return false
}

// precisionName shortens a torch dtype: "bfloat16" → "bf16".
func precisionName(dtype string) string {
	switch strings.TrimPrefix(strings.ToLower(dtype), "torch.") {
	case "":
		return ""
	case "bfloat16", "bf16":
		return "bf16"
	case "float16", "half", "fp16", "f16":
		return "fp16"
	case "float32", "float", "fp32", "f32":
		return "fp32"
	case "float64", "double", "fp64", "f64":
		return "fp64"
	case "float8_e4m3fn", "float8_e5m2", "f8_e4m3", "f8_e5m2":
		return "fp8"
	}
	return strings.ToLower(dtype)
}

// readMLmodel keeps an MLflow model's flavors in an annotation.
func (d *Detected) readMLmodel(f File) {
	b, err := readSmall(f, 16<<20)
	if err != nil {
		d.warn(f, err)
		return
	}
	var m struct {
		Flavors map[string]json.RawMessage `json:"flavors"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		d.warn(f, err)
		return
	}
	names := make([]string, 0, len(m.Flavors))
	for k := range m.Flavors {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 0 {
		d.Annotations[AnnotationMLflowFlavors] = strings.Join(names, ",")
		d.Sources["mlflowFlavors"] = f.Path + " flavors"
	}
}

// readSmall reads a metadata file that must be small.
func readSmall(f File, limit int64) ([]byte, error) {
	if f.Size > limit {
		return nil, fmt.Errorf("%d bytes, more than %d", f.Size, limit)
	}
	fh, err := os.Open(f.OSPath)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, limit))
}

// FormatParamCount writes a parameter count with three significant digits
// and a K, M, B or T suffix: 7241732096 → "7.24B", 219136 → "219K".
func FormatParamCount(n *big.Int) string {
	if n.Sign() <= 0 {
		return ""
	}
	if n.Cmp(big.NewInt(1000)) < 0 {
		return n.String()
	}
	f, _ := new(big.Float).SetInt(n).Float64()
	units := []string{"", "K", "M", "B", "T"}
	u := 0
	for f >= 999.5 && u < len(units)-1 {
		f /= 1000
		u++
	}
	// Round to three significant digits; a value that rounds up to 1000
	// moves to the next unit ("999.7M" is "1.00B").
	var s string
	switch {
	case f >= 99.95:
		s = strconv.FormatFloat(f, 'f', 0, 64)
	case f >= 9.995:
		s = strconv.FormatFloat(f, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(f, 'f', 2, 64)
	}
	return s + units[u]
}

// Apply fills the empty fields of m with what was detected (what the caller
// said wins) and returns the manifest annotations to add: the detected
// annotations and AnnotationMetadataSources for the fields it filled.
func (d Detected) Apply(m Metadata) (Metadata, map[string]string) {
	used := map[string]string{}
	fill := func(field string, dst *string, v string) {
		if *dst == "" && v != "" {
			*dst = v
			used[field] = d.Sources[field]
		}
	}
	fill("family", &m.Family, d.Metadata.Family)
	fill("architecture", &m.Architecture, d.Metadata.Architecture)
	fill("format", &m.Format, d.Metadata.Format)
	fill("paramSize", &m.ParamSize, d.Metadata.ParamSize)
	fill("precision", &m.Precision, d.Metadata.Precision)
	fill("quantization", &m.Quantization, d.Metadata.Quantization)
	ann := map[string]string{}
	for k, v := range d.Annotations {
		ann[k] = v
	}
	if s, ok := d.Sources["mlflowFlavors"]; ok {
		used["mlflowFlavors"] = s
	}
	if len(used) > 0 {
		b, _ := json.Marshal(used) // map keys sorted: deterministic
		ann[AnnotationMetadataSources] = string(b)
	}
	return m, ann
}
