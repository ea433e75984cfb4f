package admission

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/modelattest/modelattest/oras"
)

// targetTTL is how long an opened repository client is reused: its token
// cache and the Docker config it read live that long, so a rotated login
// is picked up within it.
const targetTTL = 10 * time.Minute

// targetKey is what a repository client depends on: the repository (a
// token is scoped to it) and which credentials open it ("own" for the
// webhook's own Docker config and helpers, else a fingerprint of the pull
// secret's credential, never the credential itself). Two workloads with
// different pull secrets never share a client, so never a token.
type targetKey struct {
	repository string
	creds      string
}

// targets keeps one client (and so one token cache and one read of the
// Docker config) per repository and credential set, instead of one per
// review.
type targets struct {
	mu sync.Mutex
	m  map[targetKey]entry[*oras.Target]
}

func (p *targets) get(k targetKey) *oras.Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[k]
	if !ok || time.Now().After(e.expires) {
		return nil
	}
	return e.v
}

func (p *targets) put(k targetKey, t *oras.Target) *oras.Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[targetKey]entry[*oras.Target]{}
	}
	if e, ok := p.m[k]; ok && time.Now().Before(e.expires) {
		return e.v // opened concurrently: keep one
	}
	if len(p.m) >= maxEntries {
		sweep(p.m)
	}
	p.m[k] = entry[*oras.Target]{t, time.Now().Add(targetTTL)}
	return t
}

// openTarget returns the client of repository for the credentials that
// apply: the workload's pull secret for its host when it has one (the
// secrets are read from the API here, on a cache miss), else the webhook's
// own Docker config and credential helpers. The client is shared by every
// review with the same repository and credentials.
func (w *Webhook) openTarget(ctx context.Context, repository string, creds *pullCreds) (*oras.Target, error) {
	o := w.opts.Remote
	o.HTTPClient = w.reg
	if o.UserAgent == "" {
		o.UserAgent = "modelattest-admission"
	}
	key := targetKey{repository: repository, creds: "own"}
	if creds != nil && o.Username == "" && o.Password == "" {
		host := registryKey(hostOf(repository))
		if c, ok := creds.get(ctx, host); ok {
			key.creds = credentialFingerprint(c)
			o.Credential = func(_ context.Context, hostport string) (auth.Credential, bool) {
				if registryKey(hostport) == host {
					return c, true
				}
				return auth.EmptyCredential, false
			}
		}
	}
	if t := w.targets.get(key); t != nil {
		return t, nil
	}
	t, err := oras.OpenRemote(ctx, repository, o)
	if err != nil {
		return nil, err
	}
	return w.targets.put(key, t), nil
}

// credentialFingerprint tells credential sets apart without keeping them
// in a second place.
func credentialFingerprint(c auth.Credential) string {
	h := sha256.New()
	for _, s := range []string{c.Username, c.Password, c.RefreshToken, c.AccessToken} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
