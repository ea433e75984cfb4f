package oras

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestBlobLocations: the record answers only for the same host, another
// repository and the same size; it stays bounded; a damaged file is
// ignored, never an error; two writers' records merge.
func TestBlobLocations(t *testing.T) {
	a := blobAddress{Host: "reg.example", Repository: "models/a"}
	b := blobAddress{Host: "reg.example", Repository: "models/b"}
	other := blobAddress{Host: "other.example", Repository: "models/a"}
	d := digest.FromString("weights")

	cases := []struct {
		name  string
		setup func(dir string) *blobLocations
		d     digest.Digest
		size  int64
		to    blobAddress
		want  []string
	}{
		{
			name: "another repository of the same registry",
			setup: func(dir string) *blobLocations {
				l := openLocations(dir)
				l.add(d, 10, a)
				l.save()
				return openLocations(dir)
			},
			d: d, size: 10, to: b, want: []string{"models/a"},
		},
		{
			name: "the destination itself is not a source",
			setup: func(dir string) *blobLocations {
				l := openLocations(dir)
				l.add(d, 10, a)
				return l
			},
			d: d, size: 10, to: a,
		},
		{
			name: "another registry is not a source",
			setup: func(dir string) *blobLocations {
				l := openLocations(dir)
				l.add(d, 10, other)
				return l
			},
			d: d, size: 10, to: b,
		},
		{
			name: "another size is another blob",
			setup: func(dir string) *blobLocations {
				l := openLocations(dir)
				l.add(d, 10, a)
				return l
			},
			d: d, size: 11, to: b,
		},
		{
			name: "most recent first, at most four",
			setup: func(dir string) *blobLocations {
				l := openLocations(dir)
				for i := range 6 {
					l.add(d, 10, blobAddress{Host: "reg.example", Repository: fmt.Sprintf("r%d", i)})
				}
				return l
			},
			d: d, size: 10, to: b, want: []string{"r5", "r4", "r3", "r2"},
		},
		{
			name: "a damaged file is an empty record",
			setup: func(dir string) *blobLocations {
				os.WriteFile(filepath.Join(dir, locationsFile), []byte("{not json"), 0o600)
				return openLocations(dir)
			},
			d: d, size: 10, to: b,
		},
		{
			name: "two writers merge",
			setup: func(dir string) *blobLocations {
				one, two := openLocations(dir), openLocations(dir)
				one.add(d, 10, a)
				two.add(digest.FromString("other"), 5, a)
				one.save()
				two.save()
				return openLocations(dir)
			},
			d: d, size: 10, to: b, want: []string{"models/a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.setup(t.TempDir())
			if got := l.sources(tc.d, tc.size, tc.to); !slices.Equal(got, tc.want) {
				t.Fatalf("sources = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("bounded", func(t *testing.T) {
		dir := t.TempDir()
		l := openLocations(dir)
		for i := range maxLocatedBlobs + 100 {
			l.add(digest.FromString(fmt.Sprint(i)), int64(i), a)
			l.entries[digest.FromString(fmt.Sprint(i))].Since = int64(i) // the later, the newer
		}
		l.save()
		got := openLocations(dir)
		if n := len(got.entries); n != maxLocatedBlobs {
			t.Fatalf("%d entries kept, want %d", n, maxLocatedBlobs)
		}
		if got.sources(digest.FromString("0"), 0, b) != nil {
			t.Error("the oldest entry was kept")
		}
		if got.sources(digest.FromString(fmt.Sprint(maxLocatedBlobs+99)), maxLocatedBlobs+99, b) == nil {
			t.Error("the newest entry was dropped")
		}
		fi, err := os.Stat(filepath.Join(dir, locationsFile))
		if err != nil || fi.Size() > maxLocationsFile || fi.Mode().Perm() != 0o600 {
			t.Fatalf("record file: %v, %v", fi, err)
		}
	})

	t.Run("no folder, no record", func(t *testing.T) {
		var l *blobLocations = openLocations("")
		l.add(d, 10, a)
		l.save()
		if l.sources(d, 10, b) != nil || l.mayHold("reg.example", 10) {
			t.Fatal("a nil record answered")
		}
	})
}
