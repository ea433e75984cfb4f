package registry

import (
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzReferrerDescriptor: whatever manifest a client pushes, the index
// records it only with a valid subject and its own digest.
func FuzzReferrerDescriptor(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x"},"subject":{"digest":"sha256:`+"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"+`"}}`))
	f.Add("", []byte(`{"subject":{"digest":"md5:x"}}`))
	f.Fuzz(func(t *testing.T, mt string, body []byte) {
		subject, d, ok := referrerDescriptor(mt, body)
		if !ok {
			return
		}
		if subject.Validate() != nil {
			t.Fatalf("recorded an invalid subject %q", subject)
		}
		if d.Digest != digest.FromBytes(body) || d.Size != int64(len(body)) {
			t.Fatalf("descriptor %+v does not describe the body", d)
		}
	})
}
