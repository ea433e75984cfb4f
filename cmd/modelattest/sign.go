package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// signerFlags choose how to sign: a key (file or KMS URI), optionally with
// an X.509 chain, or keyless.
type signerFlags struct {
	key        string
	certChain  string
	keyless    bool
	fulcioURL  string
	rekorURL   string
	idToken    string
	oidcIssuer string
}

func (f *signerFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.key, "key", "", "signing key: a cosign key file (password from $COSIGN_PASSWORD), a PEM private key, or a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)")
	fs.StringVar(&f.certChain, "certificate-chain", "", "PEM file: the key's certificate, then intermediates (a company PKI)")
	fs.BoolVar(&f.keyless, "keyless", false, "sign with a Fulcio certificate for an OIDC identity and log in Rekor")
	fs.StringVar(&f.fulcioURL, "fulcio-url", "https://fulcio.sigstore.dev", "Fulcio URL (keyless)")
	fs.StringVar(&f.rekorURL, "rekor-url", "https://rekor.sigstore.dev", "Rekor URL (keyless)")
	fs.StringVar(&f.idToken, "identity-token", "", "OIDC identity token for keyless signing (default: $SIGSTORE_ID_TOKEN)")
}

func (f *signerFlags) signer(cmd *cobra.Command) (*referrers.Signer, error) {
	ctx := cmd.Context()
	switch {
	case f.keyless && f.key != "":
		return nil, usageError{fmt.Errorf("--key and --keyless are exclusive")}
	case f.keyless:
		tok := f.idToken
		if tok == "" {
			tok = os.Getenv("SIGSTORE_ID_TOKEN")
		}
		if tok == "" {
			return nil, usageError{fmt.Errorf("--keyless needs --identity-token or $SIGSTORE_ID_TOKEN")}
		}
		return referrers.NewKeylessSigner(ctx, referrers.KeylessOptions{FulcioURL: f.fulcioURL, RekorURL: f.rekorURL, IDToken: tok})
	case f.key == "":
		return nil, usageError{fmt.Errorf("give --key KEY or --keyless")}
	}
	s, err := referrers.LoadSigner(ctx, f.key, keyPassword(cmd))
	if err != nil {
		return nil, err
	}
	if f.certChain != "" {
		pem, err := os.ReadFile(f.certChain)
		if err != nil {
			return nil, err
		}
		return s.WithCertificateChain(pem)
	}
	return s, nil
}

type signResult struct {
	Subject       ocispec.Descriptor `json:"subject"`
	Referrer      ocispec.Descriptor `json:"referrer"`
	PredicateType string             `json:"predicateType,omitempty"`
	// Format is the signature's format when it is not a Sigstore bundle.
	Format string `json:"format,omitempty"`
	Signer string `json:"signer"`
}

func printSigned(cmd *cobra.Command, format string, r signResult) error {
	if format == "json" {
		return printJSON(cmd.OutOrStdout(), r)
	}
	what := r.PredicateType
	if r.Format != "" {
		what = r.Format
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Signed %s (%s) as %s\nReferrer: %s\n", r.Subject.Digest, what, r.Signer, r.Referrer.Digest)
	return nil
}

// resolveTarget opens REF and resolves it once.
func resolveTarget(cmd *cobra.Command, ref string, layout bool, rf *remoteFlags) (*oras.Target, ocispec.Descriptor, error) {
	ro, err := rf.options(cmd.InOrStdin())
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	t, err := oras.Open(cmd.Context(), ref, layout, ro)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	desc, err := oras.Resolve(cmd.Context(), t, t.Reference)
	return t, desc, err
}

func newSignCmd() *cobra.Command {
	var sf signerFlags
	var nf notationFlags
	var rf remoteFlags
	var of outputFlags
	var layout bool
	cmd := &cobra.Command{
		Use:   "sign REF",
		Short: "Sign a model's manifest digest and store the signature as a referrer (cosign's format)",
		Long: `Sign resolves REF to a digest once and signs that digest: a Sigstore bundle
v0.3 (DSSE, in-toto statement, predicate https://sigstore.dev/cosign/sign/v1)
stored as an OCI 1.1 referrer exactly as cosign v3 stores it, so cosign
verify, Harbor and oras discover read it. No model blob is fetched.

--notation makes a Notary Project signature instead (a COSE envelope, or
JWS with --signature-format jws, over the manifest descriptor), stored as
notation sign stores it, so notation verify, Harbor and ECR read it. It
needs --key (a key file, or an ECDSA KMS key) and --certificate-chain.`,
		Example: `  modelattest sign --key cosign.key registry.example/models/llama:v1
  modelattest sign --key awskms:///alias/ml-release registry.example/models/llama@sha256:…
  modelattest sign --key release.pem --certificate-chain release-chain.pem registry.example/models/llama:v1
  modelattest sign --notation --key release.pem --certificate-chain release-chain.pem registry.example/models/llama:v1
  modelattest sign --notation --signature-format jws --timestamp-url http://tsa.example/ --timestamp-root-cert tsa-root.pem \
      --key release.pem --certificate-chain release-chain.pem registry.example/models/llama:v1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if err := nf.check(cmd.Flags(), &sf); err != nil {
				return err
			}
			if nf.enabled {
				t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
				if err != nil {
					return err
				}
				res, err := nf.sign(cmd, &sf, t, desc)
				if err != nil {
					return err
				}
				return printSigned(cmd, of.format, res)
			}
			s, err := sf.signer(cmd)
			if err != nil {
				return err
			}
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				return err
			}
			ref, err := referrers.Sign(cmd.Context(), t, desc, s, referrers.AttachOptions{})
			if err != nil {
				return err
			}
			return printSigned(cmd, of.format, signResult{Subject: desc, Referrer: ref, PredicateType: referrers.PredicateCosignSign, Signer: s.Identity})
		},
	}
	sf.add(cmd.Flags())
	nf.add(cmd.Flags())
	rf.add(cmd.Flags())
	cmd.Flags().StringVar(&of.format, "format", "text", "output format: text, json")
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	return cmd
}

func newAttestCmd() *cobra.Command {
	var sf signerFlags
	var rf remoteFlags
	var of outputFlags
	var layout bool
	var predType, predFile, builderID, buildType, invocation, modelName string
	var params, deps []string
	cmd := &cobra.Command{
		Use:   "attest REF",
		Short: "Sign an in-toto attestation about a model (SLSA provenance, model signing, any predicate) and store it as a referrer",
		Long: `Attest signs an in-toto statement whose subject is REF's manifest digest.

--type slsaprovenance1 (https://slsa.dev/provenance/v1) takes the predicate
from --predicate FILE, or builds it from --builder-id, --build-type,
--param KEY=VALUE and --dependency uri=URI,digest=ALG:HEX[,name=NAME] (the
training datasets, the base model, the training code). It is validated
before signing: nothing is pushed for an invalid predicate.

--type model-signing makes the OpenSSF model-signing statement from the
manifest alone (no file is read); pull --model-signature writes it as
model.sig so "model_signing verify" works on the pulled files.

Any other --type URI signs the JSON object in --predicate FILE.`,
		Example: `  modelattest attest --key cosign.key --type slsaprovenance1 --predicate provenance.json REF
  modelattest attest --key cosign.key --type slsaprovenance1 --builder-id https://ci.acme.example/trainer@v2 \
      --build-type https://acme.example/ml-train/v1 --param repo=https://git.acme.example/train \
      --dependency uri=s3://acme-datasets/approved/wiki,digest=sha256:… REF
  modelattest attest --key cosign.key --type model-signing REF
  modelattest attest --key cosign.key --type https://acme.example/model-card/v1 --predicate card.json REF`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if predType == "" {
				return usageError{fmt.Errorf("attest needs --type (slsaprovenance1, model-signing or a predicate type URI)")}
			}
			pt, err := referrers.ResolvePredicateType(predType)
			if err != nil {
				return usageError{err}
			}
			var pred json.RawMessage
			switch {
			case predFile != "":
				b, err := os.ReadFile(predFile)
				if err != nil {
					return err
				}
				if !json.Valid(b) {
					return fmt.Errorf("%w: %s is not JSON", referrers.ErrPredicate, predFile)
				}
				pred = b
			case pt == referrers.PredicateSLSAProvenance:
				p := referrers.Provenance{BuilderID: builderID, BuildType: buildType, InvocationID: invocation,
					ExternalParameters: map[string]any{}}
				for _, kv := range params {
					k, v, ok := strings.Cut(kv, "=")
					if !ok {
						return usageError{fmt.Errorf("--param %q: want KEY=VALUE", kv)}
					}
					p.ExternalParameters[k] = v
				}
				for _, d := range deps {
					dep, err := referrers.ParseDependency(d)
					if err != nil {
						return usageError{err}
					}
					p.Dependencies = append(p.Dependencies, dep)
				}
				var err error
				if pred, err = p.Predicate(); err != nil {
					return err
				}
			case pt == referrers.PredicateModelSigning:
			default:
				return usageError{fmt.Errorf("--type %s needs --predicate FILE", pt)}
			}
			s, err := sf.signer(cmd)
			if err != nil {
				return err
			}
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				return err
			}
			var ref ocispec.Descriptor
			if pt == referrers.PredicateModelSigning {
				name := modelName
				if name == "" {
					name = path.Base(t.Name)
				}
				ref, err = referrers.AttestModelSigning(cmd.Context(), t, desc, s, name, referrers.AttachOptions{})
			} else {
				ref, err = referrers.Attest(cmd.Context(), t, desc, s, pt, pred, referrers.AttachOptions{})
			}
			if err != nil {
				return err
			}
			return printSigned(cmd, of.format, signResult{Subject: desc, Referrer: ref, PredicateType: pt, Signer: s.Identity})
		},
	}
	sf.add(cmd.Flags())
	rf.add(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&of.format, "format", "text", "output format: text, json")
	f.BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	f.StringVar(&predType, "type", "", "predicate type: slsaprovenance1, model-signing, or a URI")
	f.StringVar(&predFile, "predicate", "", "JSON file holding the predicate")
	f.StringVar(&builderID, "builder-id", "", "SLSA runDetails.builder.id")
	f.StringVar(&buildType, "build-type", "", "SLSA buildDefinition.buildType")
	f.StringVar(&invocation, "invocation-id", "", "SLSA runDetails.metadata.invocationId")
	f.StringArrayVar(&params, "param", nil, "SLSA externalParameters KEY=VALUE (repeatable)")
	f.StringArrayVar(&deps, "dependency", nil, "SLSA resolvedDependencies: uri=URI,digest=ALG:HEX[,name=NAME] (repeatable)")
	f.StringVar(&modelName, "model-name", "", "subject name of a model-signing statement (default: the repository's last path element)")
	return cmd
}

func newKeygenCmd() *cobra.Command {
	var prefix string
	var of outputFlags
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Write a cosign-compatible key pair (PREFIX.key, encrypted, and PREFIX.pub)",
		Long: `Keygen writes an ECDSA P-256 key pair as cosign generate-key-pair does.
The private key is encrypted with $COSIGN_PASSWORD when it is set (set it
empty for no password), else with a password asked for twice on the
terminal. Existing files are never overwritten.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			pass, err := newKeyPassword(cmd)
			if err != nil {
				return err
			}
			k, p, err := referrers.GenerateKeyPair(prefix, pass)
			if err != nil {
				return err
			}
			if of.format == "json" {
				return printJSON(cmd.OutOrStdout(), struct {
					PrivateKey string `json:"privateKey"`
					PublicKey  string `json:"publicKey"`
				}{k, p})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Private key written to %s\nPublic key written to %s\n", k, p)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	cmd.Flags().StringVar(&of.format, "format", "text", "output format: text, json")
	return cmd
}
