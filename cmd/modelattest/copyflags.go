package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/oras"
)

// copyFlags are copy's registry flags, one set per side as `oras cp`
// spells them (--from-username, --to-plain-http, …): a copy talks to two
// registries, and what reaches one must never be sent to the other.
type copyFlags struct {
	from, to remoteFlags
	// shared catches the one-registry flags (-u, -p, --plain-http, …) so
	// that copy can refuse them by name instead of applying them to both.
	shared remoteFlags
}

func (f *copyFlags) add(fs *pflag.FlagSet) {
	f.from.addSide(fs, "from", "source")
	f.to.addSide(fs, "to", "destination")
	f.shared.add(fs)
	for _, name := range sharedRemoteFlags {
		_ = fs.MarkHidden(name)
	}
}

// sharedRemoteFlags are the flags of remoteFlags.add.
var sharedRemoteFlags = []string{"username", "password", "password-stdin", "registry-config", "plain-http", "insecure", "ca-file", "distribution-spec"}

// addSide registers the remote flags under --SIDE-NAME for the registry
// named by what.
func (f *remoteFlags) addSide(fs *pflag.FlagSet, side, what string) {
	fs.StringVar(&f.opts.Username, side+"-username", "", what+" registry user name")
	fs.StringVar(&f.opts.Password, side+"-password", "", what+" registry password or identity token")
	fs.BoolVar(&f.passwordStdin, side+"-password-stdin", false, "read the "+what+" registry password from standard input")
	fs.StringVar(&f.opts.RegistryConfig, side+"-registry-config", "", "Docker config file with the "+what+" registry's credentials (default: ~/.docker/config.json)")
	fs.BoolVar(&f.opts.PlainHTTP, side+"-plain-http", false, "talk HTTP to the "+what+" registry instead of HTTPS")
	fs.BoolVar(&f.opts.Insecure, side+"-insecure", false, "do not verify the "+what+" registry's TLS certificate")
	fs.StringVar(&f.opts.CAFile, side+"-ca-file", "", "PEM file of extra trusted CA certificates for the "+what+" registry")
	fs.StringVar(&f.distSpec, side+"-distribution-spec", "", "force referrers handling at the "+what+": v1.1-referrers-api or v1.1-referrers-tag")
}

// check refuses the one-registry flags on copy, naming the per-side ones,
// and a password on standard input for both sides.
func (f *copyFlags) check(fs *pflag.FlagSet) error {
	var used, instead []string
	for _, name := range sharedRemoteFlags {
		if fs.Changed(name) {
			used = append(used, "--"+name)
			instead = append(instead, "--from-"+name+"/--to-"+name)
		}
	}
	if len(used) > 0 {
		return usageError{fmt.Errorf("copy talks to two registries: %s would apply to both, and a credential must reach only its own registry; use %s",
			strings.Join(used, ", "), strings.Join(instead, ", "))}
	}
	if f.from.passwordStdin && f.to.passwordStdin {
		return usageError{fmt.Errorf("--from-password-stdin and --to-password-stdin: standard input holds one password; give the other with --from-password/--to-password or a registry config")}
	}
	return nil
}

// options builds the remote options of each side.
func (f *copyFlags) options(stdin io.Reader) (from, to oras.RemoteOptions, err error) {
	if from, err = f.from.options(stdin); err != nil {
		return from, to, sideError("from", err)
	}
	if to, err = f.to.options(stdin); err != nil {
		return from, to, sideError("to", err)
	}
	return from, to, nil
}

// sideError names the side a flag error belongs to.
func sideError(side string, err error) error {
	var ue usageError
	if errors.As(err, &ue) {
		return usageError{fmt.Errorf("%s side: %w", side, ue.error)}
	}
	return fmt.Errorf("%s: %w", side, err)
}
