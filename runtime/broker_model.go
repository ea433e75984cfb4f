package runtime

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// RegistryModels is the ModelSource that reads registries: it opens the
// repository of the reference the evidence names (never an OCI layout),
// resolves the bound digest (not the tag), re-walks the referrer graph
// against p and, when the model passes, reads its manifest by digest. A
// model that fails is refused whatever the rule's mode: a key is released
// only to a model that satisfies its rule.
//
// The reference comes from the guest, so the broker reads the registry the
// guest names; it does so only after the TEE report, the measurement and
// the binding have passed (the model step is Verify's last), and the
// policy's rules decide which repositories count.
func RegistryModels(p *referrers.Policy, remote oras.RemoteOptions) ModelSource {
	return func(ctx context.Context, reference string, manifest digest.Digest) (*VerifiedModel, error) {
		t, err := oras.OpenRemote(ctx, reference, remote)
		if err != nil {
			return nil, err
		}
		desc, err := oras.Resolve(ctx, t, manifest.String())
		if err != nil {
			return nil, err
		}
		rep, err := referrers.VerifyModel(ctx, t, t.PolicyName(), desc, p, referrers.VerifyOptions{})
		vm := &VerifiedModel{Report: rep, Descriptor: desc}
		if err != nil {
			return vm, err
		}
		if !rep.Passed {
			return vm, fmt.Errorf("%w: %s fails policy rule %d (mode %s): no key is released for it", referrers.ErrPolicyNotSatisfied, desc.Digest, rep.Rule, rep.Mode)
		}
		if vm.Manifest, _, err = oras.FetchManifest(ctx, t, desc); err != nil {
			return vm, err
		}
		return vm, nil
	}
}
