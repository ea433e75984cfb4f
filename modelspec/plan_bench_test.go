package modelspec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxManifestBytes is the manifest cap of the oras package (oras.MaxManifestBytes).
const maxManifestBytes = 4 << 20

// worstManifest builds the manifest that costs the most to judge while
// staying under the 4 MiB cap: as many layers as fit, each with a
// distinct path of the greatest depth and length the limits allow, so that
// every path brings MaxPathDepth new directories.
func worstManifest(tb testing.TB, pathBytes, depth, maxLayers int) []byte {
	tb.Helper()
	var layers []ocispec.Descriptor
	size := 200 // the manifest's own fields
	for i := 0; i < maxLayers; i++ {
		// depth-1 directories, all distinct from the other layers' ones.
		seg := fmt.Sprintf("d%07d", i)
		if maxLayers == 1 {
			seg = "a" // the a/a/…/f attack: as deep as the bytes allow
		}
		parts := make([]string, 0, depth)
		for len(parts) < depth-1 {
			parts = append(parts, seg)
		}
		p := strings.Join(parts, "/") + "/"
		p += strings.Repeat("f", max(1, pathBytes-len(p)))
		l := ocispec.Descriptor{MediaType: KindWeight.MediaType(), Digest: digest.FromString(p), Size: 1,
			Annotations: map[string]string{AnnotationFilepath: p, AnnotationFileMetadata: `{"mode":420}`}}
		b, _ := json.Marshal(l)
		if size+len(b)+1 > maxManifestBytes {
			break
		}
		size += len(b) + 1
		layers = append(layers, l)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Layers: layers}
	m.SchemaVersion = 2
	b, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	if len(b) > maxManifestBytes {
		tb.Fatalf("manifest is %d bytes, over the cap", len(b))
	}
	return b
}

// BenchmarkPlanWorstCase judges (decodes and plans) the costliest manifest
// under the 4 MiB cap: at the path limits (MaxPathBytes, MaxPathDepth) with
// as many layers as fit, at MaxLayers with shorter paths, and one path as
// long as the cap allows (refused by the limits, the attack of issue 9).
func BenchmarkPlanWorstCase(b *testing.B) {
	cases := []struct {
		name                    string
		pathBytes, depth, count int
	}{
		{"limits", MaxPathBytes, MaxPathDepth, MaxLayers},
		{"max-layers", 160, 16, MaxLayers},
		{"one-deep-path", maxManifestBytes - 1024, (maxManifestBytes - 1024) / 2, 1},
	}
	for _, c := range cases {
		raw := worstManifest(b, c.pathBytes, c.depth, c.count)
		b.Run(c.name, func(b *testing.B) {
			var probe struct{ Layers []json.RawMessage }
			_ = json.Unmarshal(raw, &probe)
			cpu := processCPU()
			for b.Loop() {
				var m ocispec.Manifest
				if err := json.Unmarshal(raw, &m); err != nil {
					b.Fatal(err)
				}
				_, _ = Plan(m)
			}
			b.ReportMetric(float64(len(raw)), "manifest-bytes")
			b.ReportMetric(float64(len(probe.Layers)), "layers")
			if cpu > 0 {
				b.ReportMetric(float64((processCPU()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
