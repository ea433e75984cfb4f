package modelspec

import (
	"path"
	"strings"
)

// Media types and annotations of CNCF ModelPack v1 (model-spec v0.0.7+).
const (
	// ArtifactType is the artifactType of a ModelPack model manifest.
	ArtifactType = "application/vnd.cncf.model.manifest.v1+json"
	// MediaTypeConfig is the media type of the ModelPack model config.
	MediaTypeConfig = "application/vnd.cncf.model.config.v1+json"

	// AnnotationFilepath holds a layer's relative, slash-separated path.
	AnnotationFilepath = "org.cncf.model.filepath"
	// AnnotationFileMetadata holds a layer's FileMetadata as JSON.
	AnnotationFileMetadata = "org.cncf.model.file.metadata+json"

	// Legacy (pre-CNCF) ModelPack names, read on pull.
	legacyAnnotationFilepath = "org.cnai.model.filepath"
	legacyAnnotationMetadata = "org.cnai.model.file.metadata+json"

	// AnnotationTitle is the OCI title annotation; oras pull writes a layer
	// to this name.
	AnnotationTitle = "org.opencontainers.image.title"
	// AnnotationCreated is the OCI creation-time annotation.
	AnnotationCreated = "org.opencontainers.image.created"

	// EncryptedSuffix ends the media type of an encrypted layer (ocicrypt's
	// "+encrypted"): application/vnd.cncf.model.weight.v1.raw+encrypted is
	// an encrypted raw weight file.
	EncryptedSuffix = "+encrypted"
)

// Kind is what a file is to a model: weights, their config, docs, code or data.
type Kind string

// The kinds of ModelPack layers.
const (
	KindWeight       Kind = "weight"
	KindWeightConfig Kind = "weight.config"
	KindDoc          Kind = "doc"
	KindCode         Kind = "code"
	KindDataset      Kind = "dataset"
)

// Kinds lists every Kind in a stable order.
var Kinds = []Kind{KindWeight, KindWeightConfig, KindDoc, KindCode, KindDataset}

// Valid reports whether k is one of the ModelPack kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// MediaType is the raw (uncompressed, untarred) layer media type of kind k.
func (k Kind) MediaType() string {
	return "application/vnd.cncf.model." + string(k) + ".v1.raw"
}

var weightExt = map[string]bool{
	".safetensors": true, ".gguf": true, ".ggml": true, ".bin": true, ".pt": true,
	".pth": true, ".ckpt": true, ".onnx": true, ".h5": true, ".keras": true,
	".tflite": true, ".pb": true, ".msgpack": true, ".mlmodel": true, ".npz": true,
	".npy": true, ".pkl": true, ".joblib": true,
}

var weightConfigName = map[string]bool{
	"config.json": true, "generation_config.json": true, "special_tokens_map.json": true,
	"preprocessor_config.json": true, "vocab.json": true, "merges.txt": true,
	"added_tokens.json": true, "chat_template.jinja": true, "model.safetensors.index.json": true,
	"vocab.txt": true, "adapter_config.json": true, "chat_template.json": true,
}

var codeExt = map[string]bool{
	".py": true, ".ipynb": true, ".sh": true, ".go": true, ".js": true, ".ts": true,
	".rs": true, ".c": true, ".cc": true, ".cpp": true, ".h": true, ".cu": true,
	".java": true, ".rb": true, ".jl": true, ".r": true,
}

var docExt = map[string]bool{".md": true, ".txt": true, ".rst": true, ".pdf": true, ".html": true}

var datasetExt = map[string]bool{".parquet": true, ".csv": true, ".tsv": true, ".jsonl": true, ".arrow": true}

// KindOf chooses a file's kind from its well-known name or extension.
// Unknown files are documentation: the kind that no runtime loads.
func KindOf(p string) Kind {
	base := strings.ToLower(path.Base(p))
	ext := path.Ext(base)
	switch {
	case weightConfigName[base], strings.HasPrefix(base, "tokenizer"),
		strings.HasSuffix(base, ".index.json"), ext == ".tiktoken":
		return KindWeightConfig
	case weightExt[ext]:
		return KindWeight
	case strings.HasPrefix(base, "readme"), strings.HasPrefix(base, "license"),
		strings.HasPrefix(base, "notice"), strings.HasPrefix(base, "copying"):
		return KindDoc
	case codeExt[ext]:
		return KindCode
	case datasetExt[ext]:
		return KindDataset
	case docExt[ext]:
		return KindDoc
	}
	return KindDoc
}

// layerFormat is how a layer's bytes encode its files.
type layerFormat int

const (
	formatRaw layerFormat = iota
	formatTar
	formatTarGzip
	formatTarZstd
)

func (f layerFormat) String() string {
	return [...]string{"raw", "tar", "tar+gzip", "tar+zstd"}[f]
}

// parseLayerMediaType recognises the model layer media types we can read:
// CNCF and legacy ModelPack (raw and tar), KitOps ModelKits and Docker model
// artifacts. ok is false for media types that are not model files.
func parseLayerMediaType(mt string) (kind Kind, format layerFormat, ok bool) {
	switch {
	case strings.HasPrefix(mt, "application/vnd.cncf.model."),
		strings.HasPrefix(mt, "application/vnd.cnai.model."):
		rest := mt[strings.Index(mt, ".model.")+len(".model."):]
		k, enc, found := strings.Cut(rest, ".v1")
		if !found || !Kind(k).Valid() {
			return "", 0, false
		}
		switch enc {
		case ".raw":
			return Kind(k), formatRaw, true
		case ".tar", "":
			return Kind(k), formatTar, true
		case ".tar+gzip":
			return Kind(k), formatTarGzip, true
		case ".tar+zstd":
			return Kind(k), formatTarZstd, true
		}
		return "", 0, false
	case strings.HasPrefix(mt, "application/vnd.kitops.modelkit."):
		// application/vnd.kitops.modelkit.<model|modelpart|dataset|code|docs|prompts>.v1.tar[+gzip|+zstd]
		rest := strings.TrimPrefix(mt, "application/vnd.kitops.modelkit.")
		k, enc, found := strings.Cut(rest, ".v1")
		if !found {
			return "", 0, false
		}
		kinds := map[string]Kind{"model": KindWeight, "modelpart": KindWeight, "dataset": KindDataset,
			"code": KindCode, "docs": KindDoc, "prompts": KindDoc}
		kk, known := kinds[k]
		if !known {
			return "", 0, false
		}
		switch enc {
		case ".tar":
			return kk, formatTar, true
		case ".tar+gzip":
			return kk, formatTarGzip, true
		case ".tar+zstd":
			return kk, formatTarZstd, true
		}
		return "", 0, false
	case strings.HasPrefix(mt, "application/vnd.docker.ai."):
		// Docker model artifacts: gguf, safetensors, license, vllm config, …,
		// each layer one raw file named by its title annotation.
		rest := strings.TrimPrefix(mt, "application/vnd.docker.ai.")
		format := formatRaw
		if strings.HasSuffix(rest, ".tar") {
			format = formatTar
		}
		switch {
		case strings.HasPrefix(rest, "gguf"), strings.HasPrefix(rest, "safetensors"),
			strings.HasPrefix(rest, "mmproj"), strings.HasPrefix(rest, "dir"):
			return KindWeight, format, true
		case strings.HasPrefix(rest, "license"):
			return KindDoc, format, true
		case strings.HasPrefix(rest, "config"), strings.HasPrefix(rest, "chat.template"),
			strings.HasPrefix(rest, "vllm"):
			return KindWeightConfig, format, true
		}
		return "", 0, false
	}
	return "", 0, false
}
