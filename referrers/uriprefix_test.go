package referrers

import "testing"

// TestURIPrefixSegments: a uriPrefix compares parsed URLs on path-segment
// boundaries, and a dependency with a dot segment (also percent-encoded)
// or an encoded slash never lies under it. The old strings.HasPrefix
// accepted every "under: false" case below whose text starts with the
// prefix.
func TestURIPrefixSegments(t *testing.T) {
	for _, tc := range []struct {
		prefix, uri string
		under       bool
	}{
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/wiki-2026", true},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/a/b/c.parquet", true},
		{"s3://acme-datasets/approved", "s3://acme-datasets/approved/wiki", true},
		{"s3://acme-datasets/approved", "s3://acme-datasets/approved", true},
		{"s3://acme-datasets/approved/", "S3://ACME-DATASETS/approved/wiki", true},
		{"https://hf.example/datasets/acme/", "https://hf.example/datasets/acme/wiki?revision=abc", true},
		{"s3://acme-datasets/approved", "s3://acme-datasets/approved-evil/x", false},
		{"s3://acme-datasets/approved", "s3://acme-datasets/approvedx", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/../poisoned/x.parquet", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/%2e%2e/poisoned/x.parquet", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/%2E%2E/poisoned/x.parquet", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/.%2e/poisoned/x.parquet", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/%252e%252e/poisoned", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/./x", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/x/..", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/..%2fpoisoned/x", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/..%5Cpoisoned/x", false},
		{"s3://acme-datasets/approved/", `s3://acme-datasets/approved/..\poisoned\x`, false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets@evil.example/approved/x", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets.evil.example/approved/x", false},
		{"s3://acme-datasets/approved/", "gs://acme-datasets/approved/x", false},
		{"s3://acme-datasets/approved/", "s3://other/acme-datasets/approved/x", false},
		{"s3://acme-datasets/approved/", "s3:acme-datasets/approved/x", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved", false},
	} {
		u, err := parsePrefix(tc.prefix)
		if err != nil {
			t.Fatalf("prefix %q: %v", tc.prefix, err)
		}
		if got, _ := underPrefix(tc.uri, u); got != tc.under {
			t.Errorf("%q under %q = %v, want %v", tc.uri, tc.prefix, got, tc.under)
		}
	}
	for _, bad := range []string{"approved/", "s3://b/approved/../x/", "s3://b/%2e%2e/", "s3://b/a?x=1", "s3://u@b/a/", "s3://b/a%2fb/"} {
		if _, err := parsePrefix(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
}
