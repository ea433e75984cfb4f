package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/modelspec"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// packFlags are the flags that describe a model being packed.
type packFlags struct {
	metaFile    string
	meta        modelspec.Metadata
	created     string
	kinds       []string
	excludes    []string
	noDefaults  bool
	deref       bool
	noDetect    bool
	annotations []string
	concurrency int
	digestCache string
}

func (f *packFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.metaFile, "metadata", "", "YAML or JSON file of model metadata (flags override it)")
	fs.StringVar(&f.meta.Name, "name", "", "model name")
	fs.StringVar(&f.meta.Version, "version", "", "model version")
	fs.StringVar(&f.meta.Family, "family", "", "model family, such as llama3")
	fs.StringVar(&f.meta.Architecture, "architecture", "", "model architecture, such as transformer")
	fs.StringVar(&f.meta.Format, "model-format", "", "weights format, such as safetensors or gguf")
	fs.StringVar(&f.meta.ParamSize, "param-size", "", "parameter count, such as 8b")
	fs.StringVar(&f.meta.Precision, "precision", "", "precision, such as bf16")
	fs.StringVar(&f.meta.Quantization, "quantization", "", "quantization, such as awq")
	fs.StringSliceVar(&f.meta.Licenses, "license", nil, "SPDX license (repeatable)")
	fs.StringSliceVar(&f.meta.Authors, "author", nil, "author (repeatable)")
	fs.StringVar(&f.meta.SourceURL, "source-url", "", "URL of the model's source")
	fs.StringVar(&f.meta.Revision, "revision", "", "source revision")
	fs.StringVar(&f.created, "created", "", "creation time, RFC 3339 or Unix seconds (default: $SOURCE_DATE_EPOCH, else none)")
	fs.StringArrayVar(&f.kinds, "kind", nil, "GLOB=KIND: layer kind for matching files (weight, weight.config, doc, code, dataset)")
	fs.StringArrayVar(&f.excludes, "exclude", nil, "leave out files matching PATTERN, a .gitignore line (repeatable; also read from .modelattestignore files)")
	fs.BoolVar(&f.noDefaults, "no-default-excludes", false, "also pack .git/, caches and OS litter ("+strings.Join(modelspec.DefaultExcludes, " ")+")")
	fs.BoolVar(&f.deref, "dereference", false, "pack the files symlinks point to (a Hugging Face cache snapshot)")
	fs.BoolVar(&f.noDetect, "no-detect-metadata", false, "do not fill the config from config.json, safetensors/GGUF headers or MLmodel")
	fs.StringArrayVarP(&f.annotations, "annotation", "a", nil, "KEY=VALUE manifest annotation")
	fs.IntVar(&f.concurrency, "concurrency", oras.DefaultConcurrency, "parallel uploads")
	fs.StringVar(&f.digestCache, "digest-cache", defaultDigestCache(), "folder remembering file digests so unchanged files already in the registry are skipped unread (\"\" disables)")
}

func defaultDigestCache() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "modelattest", "digests")
}

func (f *packFlags) options(cmd *cobra.Command) (oras.PushOptions, error) {
	var o oras.PushOptions
	if f.metaFile != "" {
		m, err := modelspec.LoadMetadata(f.metaFile)
		if err != nil {
			return o, err
		}
		o.Metadata = m
	}
	mergeMetadata(&o.Metadata, f.meta, cmd.Flags())
	created := f.created
	if created == "" {
		created = os.Getenv("SOURCE_DATE_EPOCH")
	}
	t, err := modelspec.ParseCreated(created)
	if err != nil {
		return o, usageError{err}
	}
	o.Created = t
	for _, k := range f.kinds {
		glob, kind, ok := strings.Cut(k, "=")
		if !ok {
			return o, usageError{fmt.Errorf("--kind %q: want GLOB=KIND", k)}
		}
		o.Scan = append(o.Scan, modelspec.WithKind(glob, modelspec.Kind(kind)))
	}
	for _, g := range f.excludes {
		o.Scan = append(o.Scan, modelspec.WithExclude(g))
	}
	if f.noDefaults {
		o.Scan = append(o.Scan, modelspec.WithoutDefaultExcludes())
	}
	if f.deref {
		o.Scan = append(o.Scan, modelspec.WithDereference())
	}
	o.NoDetectMetadata = f.noDetect
	o.Detected = func(d modelspec.Detected) {
		for _, w := range d.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", w)
		}
	}
	for _, a := range f.annotations {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return o, usageError{fmt.Errorf("--annotation %q: want KEY=VALUE", a)}
		}
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[k] = v
	}
	o.Concurrency = f.concurrency
	o.DigestCacheDir = f.digestCache
	return o, nil
}

// mergeMetadata copies the flags the user set over the file's values.
func mergeMetadata(dst *modelspec.Metadata, src modelspec.Metadata, fs *pflag.FlagSet) {
	set := func(name string, d *string, v string) {
		if fs.Changed(name) {
			*d = v
		}
	}
	set("name", &dst.Name, src.Name)
	set("version", &dst.Version, src.Version)
	set("family", &dst.Family, src.Family)
	set("architecture", &dst.Architecture, src.Architecture)
	set("model-format", &dst.Format, src.Format)
	set("param-size", &dst.ParamSize, src.ParamSize)
	set("precision", &dst.Precision, src.Precision)
	set("quantization", &dst.Quantization, src.Quantization)
	set("source-url", &dst.SourceURL, src.SourceURL)
	set("revision", &dst.Revision, src.Revision)
	if fs.Changed("license") {
		dst.Licenses = src.Licenses
	}
	if fs.Changed("author") {
		dst.Authors = src.Authors
	}
}

type pushResult struct {
	Reference string             `json:"reference"`
	Manifest  ocispec.Descriptor `json:"manifest"`
}

// pushOutput is what push and pack --format json print: the reference and
// what happened to each blob (docs/TRANSFER.md).
type pushOutput struct {
	Reference string `json:"reference"`
	*oras.PushResult
}

// pushDir packs dir into t with progress and prints the result.
func pushDir(cmd *cobra.Command, of *outputFlags, verb string, t *oras.Target, dir string, opts oras.PushOptions) error {
	p, wait := of.progress(cmd)
	opts.Progress = p
	res, err := oras.PushModel(cmd.Context(), t, t.Reference, dir, opts)
	wait(err)
	if err != nil {
		return err
	}
	if of.format == "json" {
		return printJSON(cmd.OutOrStdout(), pushOutput{Reference: t.String(), PushResult: res})
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "%s %s\nDigest: %s\n", verb, t.String(), res.Manifest.Digest)
	printPushSummary(w, res)
	return nil
}

func newPackCmd() *cobra.Command {
	var pf packFlags
	var of outputFlags
	var out string
	cmd := &cobra.Command{
		Use:   "pack DIR -o LAYOUT[:TAG]",
		Short: "Pack a model directory into an OCI image layout (ModelPack format)",
		Example: `  modelattest pack ./llama -o ./llama-oci:v1 --name llama --version 1
  SOURCE_DATE_EPOCH=0 modelattest pack ./llama -o ./out:v1   # reproducible digest`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if out == "" {
				return usageError{fmt.Errorf("pack needs -o LAYOUT[:TAG]")}
			}
			opts, err := pf.options(cmd)
			if err != nil {
				return err
			}
			t, err := oras.OpenLayout(out)
			if err != nil {
				return err
			}
			return pushDir(cmd, &of, "Packed", t, args[0], opts)
		},
	}
	pf.add(cmd.Flags())
	of.add(cmd.Flags(), "text", "json")
	cmd.Flags().StringVarP(&out, "output", "o", "", "OCI image layout to write, DIR[:TAG]")
	return cmd
}

func newPushCmd() *cobra.Command {
	var pf packFlags
	var of outputFlags
	var rf remoteFlags
	var sf pushSignFlags
	var layout bool
	cmd := &cobra.Command{
		Use:   "push REF DIR",
		Short: "Pack a model directory and push it to a registry, reading each file once",
		Long: `Push packs DIR as ModelPack layers (one raw layer per file) and pushes it.

--encrypt-recipient jwe:PUB.pem encrypts every file layer with ocicrypt's
scheme (AES-256-CTR with an HMAC, a fresh key per layer wrapped to each
recipient, +encrypted media types); the config stays plain. An encrypted
push reads each file twice and is not reproducible: its keys are random.
Sign and attest the encrypted manifest as usual. --model-signing signs an
OpenSSF model-signing statement of the files (made from the plaintext when
encrypting: attest --type model-signing refuses an encrypted manifest).
Pull it with --decryption-key, or through a key broker (runtime load --broker).`,
		Example: `  modelattest push registry.example/models/llama:v1 ./llama --name llama
  modelattest push --oci-layout ./llama-oci:v1 ./llama
  modelattest push registry.example/models/llama:v1 ./llama --encrypt-recipient jwe:broker.pub.pem \
      --model-signing --key cosign.key`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			opts, err := pf.options(cmd)
			if err != nil {
				return err
			}
			rs, err := sf.check(cmd.Flags())
			if err != nil {
				return err
			}
			ro, err := rf.options(cmd.InOrStdin())
			if err != nil {
				return err
			}
			t, err := oras.Open(cmd.Context(), args[0], layout, ro)
			if err != nil {
				return err
			}
			if len(rs) > 0 || sf.modelSigning {
				return sf.pushSigned(cmd, &of, t, args[1], rs, opts)
			}
			return pushDir(cmd, &of, "Pushed", t, args[1], opts)
		},
	}
	pf.add(cmd.Flags())
	of.add(cmd.Flags(), "text", "json")
	rf.add(cmd.Flags())
	sf.add(cmd.Flags())
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG]")
	return cmd
}

// pullOutput is what pull --format json prints: the files pulled and, with
// --policy, the verification report (verdict, rule, policy digest,
// requirements), also when the policy refused the model.
type pullOutput struct {
	Verification *referrers.Report `json:"verification,omitempty"`
	*oras.PullResult
}

func newPullCmd() *cobra.Command {
	var of outputFlags
	var ev eventFlags
	var rf remoteFlags
	var layout, insecureSkipVerify, modelSig bool
	var od outDirFlags
	var out, policy, digestCache, decryptionKey string
	var include []string
	var concurrency, maxConns int
	cmd := &cobra.Command{
		Use:   "pull REF -o DIR",
		Short: "Pull a model's files by digest, checking every byte before it lands",
		Long: `Pull resolves REF to a digest once, then downloads every file into a staging
folder beside DIR, hashing as it streams. Nothing is moved into DIR until every
blob has been verified; a failed pull leaves DIR as it was, and a re-run resumes
(from a staging folder that is ours and writable by no one else; never on
Windows). DIR must hold nothing but the model's files: anything else is
refused by name unless --overwrite or --keep-extra.

Signatures and attestations are checked against a policy before the pull
(--policy). Pulling without that check needs --insecure-skip-verify.`,
		Example: `  modelattest pull registry.example/models/llama:v1 -o ./llama --insecure-skip-verify
  modelattest pull --oci-layout ./llama-oci:v1 -o ./llama --include 'kind:weight' --insecure-skip-verify
  modelattest pull registry.example/models/llama:v1 -o ./llama --policy policy.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if out == "" {
				return usageError{fmt.Errorf("pull needs -o DIR")}
			}
			if maxConns < 0 {
				return usageError{fmt.Errorf("--max-connections must be 0 (the default, %d) or more", oras.DefaultMaxConnections)}
			}
			if policy == "" && !insecureSkipVerify {
				return usageError{fmt.Errorf("pull needs --policy FILE to verify the model's signatures first, or --insecure-skip-verify to pull without that check (blob digests are still verified)")}
			}
			if policy != "" && insecureSkipVerify {
				return usageError{fmt.Errorf("--policy and --insecure-skip-verify are exclusive")}
			}
			if modelSig && insecureSkipVerify {
				return usageError{fmt.Errorf("--model-signature writes only a model-signing bundle that --policy verified; it cannot be used with --insecure-skip-verify")}
			}
			if modelSig && len(include) > 0 {
				return usageError{fmt.Errorf("--model-signature and --include are exclusive: model.sig signs every file, so a partial pull would not verify against it")}
			}
			if err := ev.open(cmd, of.format); err != nil {
				return err
			}
			defer ev.close(cmd)
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				ev.record(events.FacePull, args[0], args[0], "", nil, err)
				return err
			}
			var pol *referrers.Policy
			if policy != "" {
				if pol, err = referrers.LoadPolicy(cmd.Context(), policy); err != nil {
					ev.record(events.FacePull, args[0], t.PolicyName(), desc.Digest, nil, err)
					return err
				}
			}
			var keyPEM []byte
			if decryptionKey != "" {
				if keyPEM, err = os.ReadFile(decryptionKey); err != nil {
					err = fmt.Errorf("--decryption-key: %w", err)
					ev.record(events.FacePull, args[0], t.PolicyName(), desc.Digest, nil, err)
					return err
				}
			}
			po := oras.PullOptions{Include: include, Concurrency: concurrency, MaxConnections: maxConns, DigestCacheDir: digestCache}
			if pol == nil && keyPEM != nil {
				// Without a policy there is nothing to verify first; with one,
				// the keys are unwrapped only once the model passed it.
				if po.Decrypt, err = oras.DecryptionKeys(cmd.Context(), t, desc, keyPEM); err != nil {
					err = fmt.Errorf("--decryption-key %s: %w", decryptionKey, err)
					ev.record(events.FacePull, args[0], t.PolicyName(), desc.Digest, nil, err)
					return err
				}
			}
			if err := od.apply(&po, cmd.ErrOrStderr()); err != nil {
				return err
			}
			p, wait := of.progress(cmd)
			po.Progress = p
			var res *oras.PullResult
			var rep *referrers.Report
			decided := false // the decision event is sent once the graph is judged
			if pol != nil {
				// The library verifies the digest resolved above, then pulls
				// that digest only; the report is printed before the download.
				rep, res, err = referrers.PullVerified(cmd.Context(), t, desc, out, pol, referrers.PullVerifiedOptions{
					Pull:           po,
					ModelSignature: modelSig,
					DecryptionKey:  keyPEM,
					OnVerified: func(rep *referrers.Report) error {
						decided = true
						ev.record(events.FacePull, args[0], rep.Repository, desc.Digest, rep, nil)
						if of.format != "json" {
							printReport(cmd.ErrOrStderr(), t, rep)
						}
						if !rep.Passed && rep.Mode != referrers.ModeEnforce {
							fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s fails the policy; pulling anyway (rule mode %s)\n", desc.Digest, rep.Mode)
						}
						return nil
					},
				})
				wait(err)
				if !decided {
					ev.record(events.FacePull, args[0], t.PolicyName(), desc.Digest, nil, err)
				}
				if err != nil {
					if of.format == "json" && rep != nil {
						// CI reads the verdict from stdout, refused or not.
						_ = printJSON(cmd.OutOrStdout(), pullOutput{Verification: rep})
					}
					return pullHint(err)
				}
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: pulling %s without verifying its signatures (--insecure-skip-verify)\n", desc.Digest)
				res, err = oras.Pull(cmd.Context(), t, desc, out, po)
				wait(err)
				if err != nil {
					return pullHint(err)
				}
			}
			if of.format == "json" {
				return printJSON(cmd.OutOrStdout(), pullOutput{Verification: rep, PullResult: res})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, f := range res.Files {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", f.Status, f.Path, f.Size, f.Digest)
			}
			tw.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "Pulled %s\nDigest: %s\n", t, desc.Digest)
			fmt.Fprintf(cmd.OutOrStdout(), "Files: %s in %s\n", humanBytes(res.Bytes), humanSeconds(res.Seconds))
			return nil
		},
	}
	of.add(cmd.Flags(), "text", "json")
	rf.add(cmd.Flags())
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	cmd.Flags().StringVarP(&out, "output", "o", "", "directory to write the model's files to")
	cmd.Flags().StringArrayVar(&include, "include", nil, "pull only files matching GLOB, or kind:KIND (repeatable)")
	cmd.Flags().IntVar(&concurrency, "concurrency", oras.DefaultConcurrency, "parallel downloads")
	cmd.Flags().IntVar(&maxConns, "max-connections", 0, fmt.Sprintf("cap on connections per host for the byte ranges of big files, across files (0: %d); ranges start with fewer and add more while throughput grows", oras.DefaultMaxConnections))
	cmd.Flags().StringVar(&digestCache, "digest-cache", defaultDigestCache(), "folder where push remembers digests; pull records there which repository each blob came from, so a push to another repository of the registry mounts it (\"\" disables)")
	cmd.Flags().StringVar(&policy, "policy", "", "verify the referrer graph against this policy first")
	ev.add(cmd.Flags())
	cmd.Flags().BoolVar(&insecureSkipVerify, "insecure-skip-verify", false, "pull without verifying signatures or attestations")
	od.add(cmd.Flags())
	cmd.Flags().StringVar(&decryptionKey, "decryption-key", "", "PEM private key of a recipient of the model's encrypted layers: they are decrypted in the staging folder and checked before they land")
	cmd.Flags().BoolVar(&modelSig, "model-signature", false, "write the OpenSSF model-signing bundle that the policy verified as model.sig beside the files (for model_signing verify); needs a rule requiring model signing")
	return cmd
}

func newCopyCmd() *cobra.Command {
	var of outputFlags
	var cf copyFlags
	var fromLayout, toLayout, recursive bool
	var concurrency int
	cmd := &cobra.Command{
		Use:   "copy SRC DST",
		Short: "Copy a model (and with -r its signatures and attestations) between registries and layouts",
		Example: `  modelattest copy -r registry.example/models/llama:v1 --to-oci-layout ./airgap:v1
  modelattest copy -r --from-oci-layout ./airgap:v1 mirror.internal/models/llama:v1`,
		Aliases: []string{"cp"},
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			if err := cf.check(cmd.Flags()); err != nil {
				return err
			}
			fromOpts, toOpts, err := cf.options(cmd.InOrStdin())
			if err != nil {
				return err
			}
			src, err := oras.Open(cmd.Context(), args[0], fromLayout, fromOpts)
			if err != nil {
				return err
			}
			dst, err := oras.Open(cmd.Context(), args[1], toLayout, toOpts)
			if err != nil {
				return err
			}
			desc, err := oras.Resolve(cmd.Context(), src, src.Reference)
			if err != nil {
				return err
			}
			dstRef := dst.Reference
			if dstRef == "" && !strings.Contains(src.Reference, ":") {
				dstRef = src.Reference
			}
			p, wait := of.progress(cmd)
			err = oras.Copy(cmd.Context(), src, desc, dst, dstRef, oras.CopyOptions{Referrers: recursive, Concurrency: concurrency, Progress: p})
			wait(err)
			if err != nil {
				return err
			}
			if of.format == "json" {
				return printJSON(cmd.OutOrStdout(), pushResult{Reference: dst.String(), Manifest: desc})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Copied %s => %s\nDigest: %s\n", src, dst, desc.Digest)
			return nil
		},
	}
	of.add(cmd.Flags(), "text", "json")
	cf.add(cmd.Flags())
	cmd.Flags().BoolVar(&fromLayout, "from-oci-layout", false, "SRC is an OCI image layout")
	cmd.Flags().BoolVar(&toLayout, "to-oci-layout", false, "DST is an OCI image layout")
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy referrers (signatures, attestations) too")
	cmd.Flags().IntVar(&concurrency, "concurrency", oras.DefaultConcurrency, "parallel blob copies")
	return cmd
}

// inspectResult is the library's inspection under the reference given.
type inspectResult struct {
	Reference string `json:"reference"`
	*oras.Inspection
}

func newInspectCmd() *cobra.Command {
	var of outputFlags
	var rf remoteFlags
	var layout bool
	cmd := &cobra.Command{
		Use:   "inspect REF",
		Short: "Show a model's manifest, config and files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := of.check("text", "json"); err != nil {
				return err
			}
			t, desc, err := resolveTarget(cmd, args[0], layout, &rf)
			if err != nil {
				return err
			}
			in, err := oras.Inspect(cmd.Context(), t, desc)
			if err != nil {
				return err
			}
			res, m := inspectResult{Reference: t.String(), Inspection: in}, &in.Manifest
			if of.format == "json" {
				return printJSON(cmd.OutOrStdout(), res)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Reference:     %s\nDigest:        %s\nArtifact type: %s\n", res.Reference, desc.Digest, m.ArtifactType)
			if c := res.Config; c != nil {
				d := c.Descriptor
				fmt.Fprintf(w, "Name:          %s\nVersion:       %s\n", d.Name, d.Version)
				if d.CreatedAt != nil {
					fmt.Fprintf(w, "Created:       %s\n", d.CreatedAt.Format(time.RFC3339))
				}
				printModelFields(w, c, m.Annotations)
			}
			fmt.Fprintln(w)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PATH\tKIND\tSIZE\tMODE\tDIGEST")
			for _, f := range res.Files {
				kind := f.Kind
				if strings.HasSuffix(f.Format, modelspec.EncryptedSuffix) {
					kind += " (encrypted)" // the digest is the ciphertext's
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", f.Path, kind, f.Size, f.Mode, f.Digest)
			}
			return tw.Flush()
		},
	}
	of.add(cmd.Flags(), "text", "json")
	rf.add(cmd.Flags())
	cmd.Flags().BoolVar(&layout, "oci-layout", false, "REF is an OCI image layout DIR[:TAG|@DIGEST]")
	return cmd
}

// printModelFields prints the config's model fields, each with the file it
// was read from when pack filled it from the folder.
func printModelFields(w io.Writer, c *modelspec.Config, ann map[string]string) {
	var src map[string]string
	_ = json.Unmarshal([]byte(ann[modelspec.AnnotationMetadataSources]), &src)
	line := func(label, field, v string) {
		if v == "" {
			return
		}
		if s := src[field]; s != "" {
			v += "   (from " + s + ")"
		}
		fmt.Fprintf(w, "%-15s%s\n", label+":", v)
	}
	line("Family", "family", c.Descriptor.Family)
	arch := c.Config.Architecture
	if a := ann[modelspec.AnnotationArchitectures]; a != "" && arch != "" {
		arch += " [" + a + "]"
	}
	line("Architecture", "architecture", arch)
	line("Format", "format", c.Config.Format)
	line("Parameters", "paramSize", c.Config.ParamSize)
	line("Precision", "precision", c.Config.Precision)
	line("Quantization", "quantization", c.Config.Quantization)
	line("MLflow", "mlflowFlavors", ann[modelspec.AnnotationMLflowFlavors])
}
