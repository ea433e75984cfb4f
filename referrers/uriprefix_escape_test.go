package referrers

import "testing"

// TestURIPrefixLiteralPath: a URI lies under a prefix by what it says, not
// by what it decodes to. An object store takes "%6f" in a key literally
// (s3://acme-datasets/appr%6fved/x is the key "appr%6fved/x", outside
// approved/), so a percent-encoded character never makes a path match
// (old code compared decoded paths: every "false" case below was under).
func TestURIPrefixLiteralPath(t *testing.T) {
	for _, tc := range []struct {
		prefix, uri string
		under       bool
	}{
		{"s3://acme-datasets/approved/", "s3://acme-datasets/appr%6fved/x.parquet", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/%61pproved/x.parquet", false},
		{"s3://acme-datasets/approved", "s3://acme-datasets/approve%64", false},
		{"s3://acme-datasets/approved/", "s3://acme-d%61tasets/approved/x.parquet", false},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/my%20file.parquet", true},
		{"s3://acme-datasets/approved/", "s3://acme-datasets/approved/x.parquet", true},
	} {
		u, err := parsePrefix(tc.prefix)
		if err != nil {
			t.Fatalf("prefix %q: %v", tc.prefix, err)
		}
		if got, _ := underPrefix(tc.uri, u); got != tc.under {
			t.Errorf("%q under %q = %v, want %v", tc.uri, tc.prefix, got, tc.under)
		}
	}
}
