package referrers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/referrers"
)

// TestPolicyTextHidesNothing: what a reviewer reads is what applies. An
// explicit YAML tag makes the text say something other than what it reads
// (`match: [!!binary Kio=]` is the catch-all "**"), and the admission
// section, kept as raw JSON for the admission controller, is policy text
// too: anchors, aliases and merge keys there are refused as everywhere
// else. Old code: every case here loaded.
func TestPolicyTextHidesNothing(t *testing.T) {
	const ok = "version: 1\nmodels:\n  - match: [\"registry.acme.example/prod/**\"]\n    reject: true\n"
	if _, err := referrers.DecodePolicy([]byte(ok)); err != nil {
		t.Fatalf("good policy: %v", err)
	}
	for name, tc := range map[string]struct{ body, want string }{
		"binary match":       {strings.Replace(ok, `["registry.acme.example/prod/**"]`, "[!!binary Kio=]", 1), "explicit YAML tag !!binary"},
		"local tag":          {strings.Replace(ok, `["registry.acme.example/prod/**"]`, `[!x "**"]`, 1), "explicit YAML tag !x"},
		"tagged int":         {strings.Replace(ok, "version: 1", "version: !!int 1", 1), "explicit YAML tag !!int"},
		"admission alias":    {ok + "admission: {namespaces: &n [ml], exempt: *n}\n", "anchors and aliases are not allowed"},
		"admission merge":    {ok + "admission: {a: {<<: {b: 1}}}\n", "merge keys"},
		"admission tag":      {ok + "admission: {mode: !!binary ZW5mb3JjZQ==}\n", "explicit YAML tag !!binary"},
		"admission deep tag": {ok + "admission: [[{x: [!foo y]}]]\n", "explicit YAML tag !foo"},
	} {
		_, err := referrers.DecodePolicy([]byte(tc.body))
		if err == nil || !errors.Is(err, referrers.ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an ErrPolicy naming %q", name, err, tc.want)
		}
	}
}
