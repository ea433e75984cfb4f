package modelspec

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path"
	"sort"
	"strings"
)

// packedDtypes are the safetensors dtypes that quantisers pack several
// weights into (GPTQ and AWQ int32, bitsandbytes uint8): the element count
// of such a tensor is not its parameter count.
var packedDtypes = map[string]bool{"U8": true, "I8": true, "I32": true, "U32": true, "U4": true, "I4": true}

// safetensorsDtypes are the float dtypes that name a precision.
var safetensorsDtypes = map[string]string{
	"BF16": "bf16", "F16": "fp16", "F32": "fp32", "F64": "fp64", "F8_E4M3": "fp8", "F8_E5M2": "fp8",
}

// readSafetensors sums the tensor shapes of the safetensors weights into
// paramSize, reading only each file's JSON header. When a folder has a
// *.safetensors.index.json, only the shards it names count (a repository
// may also hold a consolidated copy of the same tensors). Packed tensors
// leave paramSize empty: a count would be wrong.
func (d *Detected) readSafetensors(files []File, quantized bool) {
	shards := map[string]map[string]bool{} // folder → shard names an index lists
	for _, f := range files {
		if !strings.HasSuffix(f.Path, ".safetensors.index.json") {
			continue
		}
		b, err := readSmall(f, 64<<20)
		if err != nil {
			d.warn(f, err)
			continue
		}
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			d.warn(f, err)
			continue
		}
		dir := path.Dir(f.Path)
		if shards[dir] == nil {
			shards[dir] = map[string]bool{}
		}
		for _, s := range idx.WeightMap {
			shards[dir][path.Clean(s)] = true
		}
	}
	total := new(big.Int)
	var sources []string
	dtypes := map[string]bool{}
	packed := quantized
	for _, f := range files {
		if path.Ext(f.Path) != ".safetensors" {
			continue
		}
		if listed, ok := shards[path.Dir(f.Path)]; ok && !listed[path.Base(f.Path)] {
			continue
		}
		n, fileDtypes, err := safetensorsCount(f)
		if err != nil {
			d.warn(f, err)
			return // a count without this file would be wrong
		}
		total.Add(total, n)
		sources = append(sources, f.Path)
		for dt := range fileDtypes {
			dtypes[dt] = true
			packed = packed || packedDtypes[dt]
		}
	}
	if len(sources) == 0 {
		return
	}
	src := "safetensors headers of " + summarise(sources)
	if !packed {
		d.set("paramSize", &d.Metadata.ParamSize, FormatParamCount(total), src)
	}
	// One float dtype throughout is the precision, when config.json did
	// not say.
	if len(dtypes) == 1 {
		for dt := range dtypes {
			d.set("precision", &d.Metadata.Precision, safetensorsDtypes[dt], src)
		}
	}
}

// summarise names a few files: "a, b and 3 more".
func summarise(names []string) string {
	sort.Strings(names)
	if len(names) <= 2 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", names[0], len(names)-1)
}

// safetensorsCount reads one safetensors header: the number of elements of
// all its tensors and the dtypes used.
func safetensorsCount(f File) (*big.Int, map[string]bool, error) {
	fh, err := os.Open(f.OSPath)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	var hdr [8]byte
	if _, err := io.ReadFull(fh, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("safetensors header: %w", err)
	}
	n := binary.LittleEndian.Uint64(hdr[:])
	if n > MaxSafetensorsHeader || int64(n) > f.Size-8 {
		return nil, nil, fmt.Errorf("safetensors header of %d bytes: more than the file or the %d MiB bound", n, MaxSafetensorsHeader>>20)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(fh, buf); err != nil {
		return nil, nil, fmt.Errorf("safetensors header: %w", err)
	}
	var tensors map[string]json.RawMessage
	if err := json.Unmarshal(buf, &tensors); err != nil {
		return nil, nil, fmt.Errorf("safetensors header: %w", err)
	}
	total := new(big.Int)
	dtypes := map[string]bool{}
	for name, raw := range tensors {
		if name == "__metadata__" {
			continue
		}
		var t struct {
			Dtype string   `json:"dtype"`
			Shape []uint64 `json:"shape"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, nil, fmt.Errorf("safetensors tensor %q: %w", name, err)
		}
		elems := big.NewInt(1)
		for _, s := range t.Shape {
			elems.Mul(elems, new(big.Int).SetUint64(s))
		}
		total.Add(total, elems)
		dtypes[t.Dtype] = true
	}
	return total, dtypes, nil
}

// GGUF metadata value types (gguf.md in ggml).
const (
	ggufUint8 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

// ggufFileTypes names general.file_type (llama.cpp's LLAMA_FTYPE): the
// quantization, or for unquantized files the precision.
var ggufFileTypes = map[uint64]string{
	0: "fp32", 1: "fp16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
	10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
	16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
	22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
	28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "bf16", 36: "TQ1_0", 37: "TQ2_0",
}

// readGGUF reads the first GGUF file's header: general.architecture is the
// family, general.file_type the quantization (or precision), and the
// tensor dimensions, which GGUF keeps unpacked, the parameter count.
func (d *Detected) readGGUF(files []File) {
	for _, f := range files {
		if path.Ext(f.Path) != ".gguf" {
			continue
		}
		h, err := readGGUFHeader(f)
		if err != nil {
			d.warn(f, err)
			return
		}
		src := "GGUF header of " + f.Path
		if a := h.str("general.architecture"); a != "" {
			d.set("family", &d.Metadata.Family, a, src+" general.architecture")
			arch := "transformer"
			if strings.HasPrefix(a, "mamba") || strings.HasPrefix(a, "rwkv") {
				arch = strings.TrimRight(a, "0123456789")
			}
			d.set("architecture", &d.Metadata.Architecture, arch, src+" general.architecture")
		}
		if ft, ok := h.uint("general.file_type"); ok {
			switch name := ggufFileTypes[ft]; name {
			case "fp32", "fp16", "bf16":
				d.set("precision", &d.Metadata.Precision, name, src+" general.file_type")
			case "":
			default:
				d.set("quantization", &d.Metadata.Quantization, name, src+" general.file_type")
			}
		}
		d.set("paramSize", &d.Metadata.ParamSize, FormatParamCount(h.params), src+" tensor shapes")
		return
	}
}

type ggufHeader struct {
	kv     map[string]any
	params *big.Int
}

func (h *ggufHeader) str(k string) string {
	s, _ := h.kv[k].(string)
	return s
}

func (h *ggufHeader) uint(k string) (uint64, bool) {
	switch v := h.kv[k].(type) {
	case uint64:
		return v, true
	case int64:
		return uint64(v), v >= 0
	}
	return 0, false
}

// ggufReader reads little-endian GGUF fields, counting bytes against the
// header bound.
type ggufReader struct {
	r    *bufio.Reader
	left int64
	err  error
}

var errGGUFBound = errors.New("header larger than the bound")

func (g *ggufReader) read(n int) []byte {
	if g.err != nil {
		return nil
	}
	if int64(n) > g.left {
		g.err = errGGUFBound
		return nil
	}
	g.left -= int64(n)
	b := make([]byte, n)
	if _, err := io.ReadFull(g.r, b); err != nil {
		g.err = err
		return nil
	}
	return b
}

func (g *ggufReader) skip(n uint64) {
	if g.err != nil {
		return
	}
	if n > uint64(g.left) {
		g.err = errGGUFBound
		return
	}
	g.left -= int64(n)
	if _, err := g.r.Discard(int(n)); err != nil {
		g.err = err
	}
}

func (g *ggufReader) u32() uint32 {
	if b := g.read(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (g *ggufReader) u64() uint64 {
	if b := g.read(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (g *ggufReader) str() string {
	n := g.u64()
	if n > 1<<20 {
		g.err = fmt.Errorf("string of %d bytes", n)
		return ""
	}
	return string(g.read(int(n)))
}

// value reads one value of type typ; scalars it returns as uint64, int64,
// float64, bool or string, arrays it skips (nil).
func (g *ggufReader) value(typ uint32) any {
	size := map[uint32]uint64{ggufUint8: 1, ggufInt8: 1, ggufBool: 1, ggufUint16: 2, ggufInt16: 2,
		ggufUint32: 4, ggufInt32: 4, ggufFloat32: 4, ggufUint64: 8, ggufInt64: 8, ggufFloat64: 8}
	switch typ {
	case ggufString:
		return g.str()
	case ggufArray:
		et, n := g.u32(), g.u64()
		if sz, ok := size[et]; ok {
			if n > math.MaxUint64/sz {
				g.err = errGGUFBound
				return nil
			}
			g.skip(n * sz)
			return nil
		}
		for i := uint64(0); i < n && g.err == nil; i++ {
			g.value(et)
		}
		return nil
	}
	sz, ok := size[typ]
	if !ok {
		g.err = fmt.Errorf("unknown value type %d", typ)
		return nil
	}
	b := g.read(int(sz))
	if b == nil {
		return nil
	}
	var u uint64
	for i := len(b) - 1; i >= 0; i-- {
		u = u<<8 | uint64(b[i])
	}
	switch typ {
	case ggufInt8:
		return int64(int8(u))
	case ggufInt16:
		return int64(int16(u))
	case ggufInt32:
		return int64(int32(u))
	case ggufInt64:
		return int64(u)
	case ggufFloat32:
		return float64(math.Float32frombits(uint32(u)))
	case ggufFloat64:
		return math.Float64frombits(u)
	case ggufBool:
		return u != 0
	}
	return u
}

// readGGUFHeader reads a GGUF (v2, v3) header up to the end of the tensor
// infos, never the tensor data, within MaxSafetensorsHeader bytes.
func readGGUFHeader(f File) (*ggufHeader, error) {
	fh, err := os.Open(f.OSPath)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	g := &ggufReader{r: bufio.NewReaderSize(fh, 1<<16), left: min(f.Size, MaxSafetensorsHeader)}
	if string(g.read(4)) != "GGUF" {
		if g.err != nil {
			return nil, fmt.Errorf("GGUF header: %w", g.err)
		}
		return nil, errors.New("not a GGUF file (magic)")
	}
	if v := g.u32(); v < 2 || v > 3 {
		return nil, fmt.Errorf("GGUF version %d: want 2 or 3", v)
	}
	nTensors, nKV := g.u64(), g.u64()
	h := &ggufHeader{kv: map[string]any{}, params: new(big.Int)}
	for i := uint64(0); i < nKV && g.err == nil; i++ {
		k := g.str()
		v := g.value(g.u32())
		if v != nil {
			h.kv[k] = v
		}
	}
	for i := uint64(0); i < nTensors && g.err == nil; i++ {
		g.str() // name
		nd := g.u32()
		if nd > 8 {
			return nil, fmt.Errorf("GGUF tensor %d: %d dimensions", i, nd)
		}
		elems := big.NewInt(1)
		for j := uint32(0); j < nd; j++ {
			elems.Mul(elems, new(big.Int).SetUint64(g.u64()))
		}
		g.u32() // ggml type
		g.u64() // offset
		h.params.Add(h.params, elems)
	}
	if g.err != nil {
		return nil, fmt.Errorf("GGUF header: %w", g.err)
	}
	return h, nil
}
