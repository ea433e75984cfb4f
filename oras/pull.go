package oras

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"github.com/modelattest/modelattest/encryption"
	"github.com/modelattest/modelattest/internal/filetype"
	"github.com/modelattest/modelattest/modelspec"
)

// MaxManifestBytes bounds a manifest or config read from a registry.
const MaxManifestBytes = 4 << 20

// ErrIntegrity is wrapped by every error that reports bytes that do not
// match their descriptor.
var ErrIntegrity = errors.New("integrity check failed")

// PullOptions are the optional settings of Pull. The zero value pulls every
// file, eight at once, with no progress, into an output directory that
// holds nothing but the model's files (or does not exist yet).
type PullOptions struct {
	// Include keeps only files matching these patterns (path.Match syntax on
	// the path or base name, or "kind:<kind>").
	Include []string
	// Concurrency is the number of parallel downloads (0: DefaultConcurrency).
	Concurrency int
	// MaxConnections caps the connections per host that byte ranges of
	// big blobs use, across all blobs of the pull (0:
	// DefaultMaxConnections). Ranges start with a few connections and add
	// more while throughput grows.
	MaxConnections int
	// Progress reports each download.
	Progress Progress
	// ExtraFiles are written into the output directory with the model's
	// files, under the same rules (for example model.sig, the OpenSSF
	// model-signing bundle). A name that is also a model file is refused.
	ExtraFiles map[string][]byte
	// Overwrite removes what the output directory holds that is not part
	// of the model (files, folders, links), once the model is in place.
	// Without it or KeepExtra, such entries make Pull fail with an
	// *ExtraFilesError before anything is downloaded.
	Overwrite bool
	// KeepExtra leaves entries that are not part of the model where they
	// are: the folder then holds files that the pull did not verify.
	KeepExtra bool
	// Warn receives what the pull did differently from what was asked, for
	// example staging afresh because the staging folder was not ours (nil:
	// warnings only go to PullResult.Warnings).
	Warn func(msg string)
	// DigestCacheDir, when set, is the folder of PushOptions.DigestCacheDir:
	// the pull records there in which registry repository each blob was
	// read, so that a push of these files to another repository of that
	// registry mounts them instead of sending them. Empty: nothing recorded.
	DigestCacheDir string
	// Decrypt holds the keys of the model's encrypted layers, by the
	// encrypted layer's digest (encryption.UnwrapKeys, DecryptionKeys, or a
	// key broker). Each ciphertext is fetched and checked against its digest
	// as any blob, decrypted into the staging folder, and placed only once
	// its HMAC and plaintext digest hold. nil: a model with an encrypted
	// layer is refused, naming the layer, before anything is fetched.
	Decrypt encryption.Keys
}

// PulledFile is one file a pull wrote or found in place.
type PulledFile struct {
	Path   string        `json:"path"`
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
	// Status says whether it was downloaded, already present or resumed.
	Status FileStatus `json:"status"`
	// Transfer has the download's figures (nil when nothing was fetched).
	Transfer *TransferStats `json:"transfer,omitempty"`
	// Encrypted says the layer was encrypted: Digest is then the
	// decrypted file's, not the layer's.
	Encrypted bool `json:"encrypted,omitempty"`
}

// PullResult says what a pull did.
type PullResult struct {
	Manifest ocispec.Descriptor `json:"manifest"`
	Files    []PulledFile       `json:"files"`
	// Removed lists what Overwrite removed from the output directory.
	Removed []string `json:"removed,omitempty"`
	// Warnings are the messages also given to PullOptions.Warn.
	Warnings []string `json:"warnings,omitempty"`
	// Bytes is the size of the files pulled (present and resumed ones
	// included); Seconds the pull's wall time.
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// FetchManifest reads the image manifest desc from src, refusing one over
// MaxManifestBytes or whose bytes do not hash to desc.Digest.
func FetchManifest(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor) (*ocispec.Manifest, []byte, error) {
	b, err := fetchSmall(ctx, src, desc, "manifest")
	if err != nil {
		return nil, nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if m.MediaType != "" && m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, nil, fmt.Errorf("manifest %s: media type %q is not an OCI image manifest", desc.Digest, m.MediaType)
	}
	if m.SchemaVersion != 2 {
		return nil, nil, fmt.Errorf("manifest %s: schemaVersion %d, want 2", desc.Digest, m.SchemaVersion)
	}
	return &m, b, nil
}

func fetchSmall(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, what string) ([]byte, error) {
	if desc.Size > MaxManifestBytes {
		return nil, fmt.Errorf("%s %s: %d bytes is over the %d-byte limit", what, desc.Digest, desc.Size, MaxManifestBytes)
	}
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	b, err := content.FetchAll(ctx, src, desc)
	if err != nil {
		if isVerifyErr(err) {
			return nil, fmt.Errorf("%s %s: %w: %w", what, desc.Digest, ErrIntegrity, err)
		}
		return nil, fmt.Errorf("%s %s: %w", what, desc.Digest, err)
	}
	return b, nil
}

// isVerifyErr reports bytes that do not match their descriptor. A wrong
// Content-Length is among them: lengthBlind leaves the size to be checked
// on the bytes themselves.
func isVerifyErr(err error) bool {
	return errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, errMismatch) || errors.Is(err, errSize) || errors.Is(err, content.ErrTrailingData) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, content.ErrInvalidDescriptorSize)
}

// Pull writes the files of the model manifest desc (a digest, resolved
// once by the caller) into outDir. Every blob is hashed while it streams
// into a staging folder beside outDir, and nothing is moved into outDir until
// every blob has been checked: a failed pull leaves outDir as it was.
//
// Before a byte is downloaded, outDir is compared with the model: a folder
// (or a file) where the model needs the other is a *ConflictError, a
// symlink on a model path is refused, and entries that are not part of the
// model are an *ExtraFilesError unless opts.Overwrite or opts.KeepExtra says
// what to do with them.
//
// Files already in outDir with the right digest are not downloaded again
// when they are ours (owned by the current user, one link, writable by no
// one else); neither are blobs an interrupted pull verified into its
// staging folder, which is created 0700 and resumed only when it and each
// blob in it are ours in the same sense. A staging folder that is not ours
// is left alone and the pull stages afresh under a new random name, with a
// warning. On Windows, where ownership is not checked this way, a pull never
// resumes: a failed pull removes its staging folder.
func Pull(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, outDir string, opts PullOptions) (*PullResult, error) {
	start := time.Now()
	m, _, err := FetchManifest(ctx, src, desc)
	if err != nil {
		return nil, err
	}
	cfg, err := checkConfig(ctx, src, m)
	if err != nil {
		return nil, err
	}
	entries, err := modelspec.Plan(*m)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if entries, err = modelspec.Filter(entries, opts.Include); err != nil {
		return nil, err
	}
	if err := checkEncrypted(m, cfg, entries, opts.Decrypt); err != nil {
		return nil, err
	}
	res := &PullResult{Manifest: desc, Files: make([]PulledFile, len(entries))}
	warn := func(msg string) {
		res.Warnings = append(res.Warnings, msg)
		if opts.Warn != nil {
			opts.Warn(msg)
		}
	}
	unpacker, err := modelspec.NewUnpacker(entries)
	if err != nil {
		return nil, err
	}
	extras, err := unpacker.Reserve(opts.ExtraFiles)
	if err != nil {
		return nil, err
	}
	st, err := openStaging(outDir, warn)
	if err != nil {
		return nil, err
	}
	defer st.root.Close()
	st.ranges = newRangeSession(opts.MaxConnections)
	defer st.ranges.close()

	// Compare the output directory with the model before any download.
	out, err := st.scanOutput()
	if err != nil {
		st.abort()
		return nil, err
	}
	archives := false
	for _, e := range entries {
		if e.Archive() {
			archives = true
			continue
		}
		if err := out.claim(e.Path); err != nil {
			return nil, st.failed(err, outDir)
		}
	}
	for _, name := range extras {
		if err := out.claim(name); err != nil {
			return nil, st.failed(err, outDir)
		}
	}
	// Archive members are known only once extracted; the check waits for them.
	if !archives && !opts.Overwrite && !opts.KeepExtra {
		if err := out.extraError(); err != nil {
			return nil, st.failed(err, outDir)
		}
	}

	var total int64
	for _, e := range entries {
		total += e.Layer.Size
	}
	plan(opts.Progress, total)
	var mu sync.Mutex
	var archiveFiles []stagedFile
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(opts.Concurrency))
	for i, e := range entries {
		g.Go(func() error {
			if e.Archive() {
				files, err := st.fetchArchive(gctx, src, e, unpacker, opts.Progress)
				if err != nil {
					return err
				}
				mu.Lock()
				archiveFiles = append(archiveFiles, files...)
				mu.Unlock()
				res.Files[i] = PulledFile{Path: e.Path, Digest: e.Layer.Digest, Size: e.Layer.Size, Status: FileDownloaded}
				return nil
			}
			if e.Encrypted() {
				// commit places the plaintext: entries[i] names it from here on.
				plain, status, stats, err := st.fetchEncrypted(gctx, src, e, opts.Decrypt[e.Layer.Digest], out.present[e.Path], opts.Progress)
				if err != nil {
					return err
				}
				entries[i].Layer = plain
				res.Files[i] = PulledFile{Path: e.Path, Digest: plain.Digest, Size: plain.Size, Status: status, Transfer: stats, Encrypted: true}
				return nil
			}
			status, stats, err := st.fetchRaw(gctx, src, e, out.present[e.Path], opts.Progress)
			if err != nil {
				return err
			}
			res.Files[i] = PulledFile{Path: e.Path, Digest: e.Layer.Digest, Size: e.Layer.Size, Status: status, Transfer: stats}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, st.failed(err, outDir)
	}
	for _, a := range archiveFiles {
		if err := out.claim(a.path); err != nil {
			return nil, st.failed(err, outDir)
		}
	}
	if archives && !opts.Overwrite && !opts.KeepExtra {
		if err := out.extraError(); err != nil {
			return nil, st.failed(err, outDir)
		}
	}
	for _, name := range extras {
		staged := st.dir + "/extra-" + strings.ReplaceAll(name, "/", "_")
		if err := st.root.WriteFile(staged, opts.ExtraFiles[name], 0o600); err != nil {
			return nil, st.failed(err, outDir)
		}
		archiveFiles = append(archiveFiles, stagedFile{path: name, name: staged, mode: 0o644})
	}
	if err := st.commit(entries, res.Files, archiveFiles); err != nil {
		return nil, st.failed(err, outDir)
	}
	if opts.Overwrite {
		if res.Removed, err = st.removeExtra(out); err != nil {
			return res, err
		}
	}
	recordPulled(opts.DigestCacheDir, src, res)
	for _, f := range res.Files {
		res.Bytes += f.Size
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// checkConfig reads a ModelPack config (nil for another config) and
// checks it against the layers: a raw layer's DiffID is its digest (an
// encrypted one's is its plaintext's, checked by checkEncrypted).
func checkConfig(ctx context.Context, src content.Fetcher, m *ocispec.Manifest) (*modelspec.Config, error) {
	if m.Config.MediaType != modelspec.MediaTypeConfig {
		return nil, nil
	}
	cfg, err := FetchConfig(ctx, src, m.Config)
	if err != nil {
		return nil, err
	}
	if len(cfg.ModelFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("config %s: %d diffIds for %d layers", m.Config.Digest, len(cfg.ModelFS.DiffIDs), len(m.Layers))
	}
	for i, l := range m.Layers {
		if strings.HasSuffix(l.MediaType, ".raw") && cfg.ModelFS.DiffIDs[i] != l.Digest {
			return nil, fmt.Errorf("config %s: diffIds[%d] %s does not match raw layer %s", m.Config.Digest, i, cfg.ModelFS.DiffIDs[i], l.Digest)
		}
	}
	return cfg, nil
}

// staging is the folder beside the output directory where a pull puts
// verified blobs until all are in. Both live under one os.Root (the output
// directory's parent), so no name can reach outside it.
type staging struct {
	root   *os.Root
	out    string // output dir, relative to root
	dir    string // staging dir, relative to root
	dirOS  string
	mu     sync.Mutex
	nblobs int
	// dirs are the output folders checked to be real folders.
	dirs map[string]bool
	// placed counts files moved into the output directory.
	placed int
	// ranges is shared by the blobs fetched in byte ranges.
	ranges *rangeSession
	// npartial counts partial downloads kept for a re-run, once aborted.
	npartial int
}

// stagingSuffix ends the name of every staging folder.
const stagingSuffix = ".modelattest-partial"

func openStaging(outDir string, warn func(string)) (*staging, error) {
	abs, err := filepath.Abs(outDir)
	if err != nil {
		return nil, err
	}
	parent, base := filepath.Dir(abs), filepath.Base(abs)
	if base == string(filepath.Separator) || base == "." || parent == abs {
		return nil, fmt.Errorf("output directory %q: must not be a filesystem root", outDir)
	}
	if fi, err := os.Lstat(abs); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("output directory %s: not a directory", outDir)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(parent)
	if err != nil {
		return nil, err
	}
	st := &staging{root: root, out: base, dir: "." + base + stagingSuffix, dirs: map[string]bool{}}
	err = root.Mkdir(st.dir, 0o700)
	if errors.Is(err, fs.ErrExist) {
		if why := st.notOurs(st.dir, true); why != "" {
			taken := filepath.Join(parent, st.dir)
			st.dir = "." + base + stagingSuffix + "-" + randSuffix()
			warn(fmt.Sprintf("staging folder %s is not ours (%s): not resuming from it; staging afresh in %s", taken, why, filepath.Join(parent, st.dir)))
			err = root.Mkdir(st.dir, 0o700)
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		root.Close()
		return nil, fmt.Errorf("staging folder: %w", err)
	}
	st.dirOS = filepath.Join(parent, st.dir)
	return st, nil
}

// notOurs says why name (relative to root) may not be trusted as ours, or
// "" when it may: a folder (when dir) or a regular file with one link,
// owned by the current user, that no one else can write. What another user
// could have put there or could still change is never resumed or reused.
func (st *staging) notOurs(name string, dir bool) string {
	fi, err := st.root.Lstat(name)
	if err != nil {
		return err.Error()
	}
	switch {
	case dir && !fi.IsDir():
		return "a " + filetype.Name(fi.Mode()) + ", not a folder"
	case !dir && !fi.Mode().IsRegular():
		return "a " + filetype.Name(fi.Mode()) + ", not a regular file"
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("mode %#o: others can write it", fi.Mode().Perm())
	}
	return notOwned(fi, dir)
}

// failed cleans up after a failed pull and says what was kept.
func (st *staging) failed(err error, outDir string) error {
	st.abort()
	var ce *ConflictError
	if errors.As(err, &ce) && st.kept() > 0 {
		ce.Staging = st.dirOS
	}
	written := "nothing was written to " + outDir
	if st.placed > 0 {
		written = fmt.Sprintf("%d files were placed in %s before it failed", st.placed, outDir)
	}
	if n := st.kept(); n > 0 || st.npartial > 0 {
		what := fmt.Sprintf("%d verified blobs", n)
		if st.npartial > 0 {
			what += fmt.Sprintf(" and %d partial downloads", st.npartial)
		}
		return fmt.Errorf("%w (%s; %s kept in %s for a re-run to resume)", err, written, what, st.dirOS)
	}
	return fmt.Errorf("%w (%s)", err, written)
}

func (st *staging) blob(d digest.Digest) string { return st.dir + "/" + d.Encoded() }

// hashIn reports whether name under root is a regular file of ours (see
// notOurs) of the given size and digest.
func (st *staging) hashIn(name string, d digest.Digest, size int64) bool {
	fi, err := st.root.Lstat(name)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size || st.notOurs(name, false) != "" {
		return false
	}
	f, err := st.root.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, f); err != nil {
		return false
	}
	return v.Verified()
}

// fetchRaw brings the blob of a raw layer into the staging folder, unless
// the output directory already holds it (present: scanOutput found a
// regular file there) or an earlier pull verified it.
func (st *staging) fetchRaw(ctx context.Context, src content.Fetcher, e modelspec.Entry, present bool, p Progress) (FileStatus, *TransferStats, error) {
	d, size := e.Layer.Digest, e.Layer.Size
	if d.Algorithm() != digest.SHA256 && d.Algorithm() != digest.SHA512 {
		return "", nil, fmt.Errorf("layer %q: unsupported digest algorithm %q", e.Path, d.Algorithm())
	}
	if present && st.hashIn(st.out+"/"+e.Path, d, size) {
		t := track(p, e.Path, size)
		t.Add(size)
		t.Done(string(FilePresent), nil)
		return FilePresent, nil, nil
	}
	status := FileResumed
	var stats *TransferStats
	if !st.hashIn(st.blob(d), d, size) {
		var err error
		if stats, err = st.download(ctx, src, e, p); err != nil {
			return "", nil, err
		}
		status = FileDownloaded
	} else {
		t := track(p, e.Path, size)
		t.Add(size)
		t.Done(string(status), nil)
	}
	st.mu.Lock()
	st.nblobs++
	st.mu.Unlock()
	return status, stats, nil
}

// download fetches a blob into the staging folder. Its partial file and
// range record keep fixed names (<digest>.partial, <digest>.ranges), so an
// interrupted pull's re-run fetches only the bytes it lacks; they are
// resumed only when ours (see notOurs) and locked by no other pull, else
// the download goes to a fresh random name. Every byte is hashed, resumed
// or not, before the blob takes its staged name.
func (st *staging) download(ctx context.Context, src content.Fetcher, e modelspec.Entry, p Progress) (*TransferStats, error) {
	d := e.Layer.Digest
	t := track(p, e.Path, e.Layer.Size)
	stats := &TransferStats{}
	start := time.Now()
	part, stateName := st.blob(d)+".partial", st.blob(d)+".ranges"
	attempt := func() (err error) {
		f, have, state, fixed, err := st.openPartial(part, stateName, e.Layer.Size)
		if err != nil {
			return err
		}
		name := part
		if !fixed {
			name = st.blob(d) + ".part-" + randSuffix()
			if f, err = st.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
				return err
			}
		}
		resumed := int64(0)
		for _, h := range have {
			resumed += h.end - h.off
		}
		ct := &countingWriter{t: t}
		ct.Add(resumed)
		err = fetchInto(ctx, src, e.Layer, f, ct, &rangeJob{sess: st.ranges, have: have, state: state, stats: stats})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if state != nil {
			state.f.Close()
		}
		if err != nil {
			t.Add(-ct.n.Load())
			// Bytes that do not verify are not kept for a resume; a cut
			// connection keeps what was written.
			if !fixed || isVerifyErr(err) || !canResume || (len(have) == 0 && state.recorded() == 0) {
				_ = st.root.Remove(name)
				_ = st.root.Remove(stateName)
			}
			return err
		}
		_ = st.root.Remove(stateName)
		return st.root.Rename(name, st.blob(d))
	}
	// A cut connection, a 5xx or bytes damaged in transit may go away on
	// another try; every try is verified, and a registry that keeps serving
	// the wrong bytes fails all of them.
	var err error
	for try := 0; try < 3; try++ {
		if err = attempt(); err == nil || ctx.Err() != nil || !retryableFetch(err) {
			break
		}
	}
	stats.Seconds = time.Since(start).Seconds()
	t.Done("downloaded", err)
	if err != nil {
		if isVerifyErr(err) {
			return nil, fmt.Errorf("layer %q (%s): %w: %w", e.Path, d, ErrIntegrity, err)
		}
		return nil, fmt.Errorf("layer %q (%s): %w", e.Path, d, err)
	}
	return stats, nil
}

// openPartial opens the fixed-name partial file of a blob and its range
// record, resuming what an interrupted pull wrote when both are ours. fixed
// is false when another pull holds the partial (or this system does not
// resume): the caller then downloads under a random name.
func (st *staging) openPartial(part, stateName string, size int64) (f *os.File, have []span, state *rangeState, fixed bool, err error) {
	if !canResume {
		return nil, nil, nil, false, nil
	}
	resume := st.notOurs(part, false) == "" && st.notOurs(stateName, false) == ""
	if !resume {
		// Not ours, or half there: start over under the fixed names. Both
		// go, whatever they are: a symlink left under either name would
		// have the file it points at written.
		for _, name := range []string{part, stateName} {
			if _, lerr := st.root.Lstat(name); lerr == nil {
				if err := st.root.Remove(name); err != nil {
					return nil, nil, nil, false, nil
				}
			}
		}
	}
	f, err = st.root.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, nil, false, err
	}
	if !lockPartial(f) {
		f.Close()
		return nil, nil, nil, false, nil
	}
	flags := os.O_RDWR | os.O_CREATE | os.O_APPEND
	if !resume {
		flags |= os.O_EXCL
	}
	sf, err := st.root.OpenFile(stateName, flags, 0o600)
	if err != nil {
		f.Close()
		return nil, nil, nil, false, err
	}
	if resume {
		if fi, err := f.Stat(); err == nil && fi.Size() == size {
			have = readRangeState(sf, size)
		}
	}
	if have == nil {
		// Nothing to resume: start from an empty file and record.
		if err := f.Truncate(0); err != nil {
			f.Close()
			sf.Close()
			return nil, nil, nil, false, err
		}
		if err := sf.Truncate(0); err != nil {
			f.Close()
			sf.Close()
			return nil, nil, nil, false, err
		}
	}
	return f, have, &rangeState{f: sf}, true, nil
}

func retryableFetch(err error) bool {
	return !errors.Is(err, errdef.ErrNotFound) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// rangeJob is what fetchInto needs for byte ranges: the pull's shared
// session, what an interrupted pull already wrote (have, from state) and
// where to put the figures.
type rangeJob struct {
	sess  *rangeSession
	have  []span
	state *rangeState
	stats *TransferStats
}

// fetchInto writes the blob desc into f, checking size and digest: in
// parallel byte ranges from a registry when the blob is big, else as one
// verified stream.
func fetchInto(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor, f *os.File, t Tracker, job *rangeJob) error {
	if job == nil {
		job = &rangeJob{sess: newRangeSession(0)}
		defer job.sess.close()
	}
	if job.stats == nil {
		job.stats = &TransferStats{}
	}
	if rs, ok := job.sess.sourceOf(src, desc); ok && desc.Size >= parallelMin {
		err := job.sess.fetchRanges(ctx, rs, desc, f, job.have, job.state, t, job.stats)
		if !errors.Is(err, errNoRanges) {
			return err
		}
		// The blob comes in one stream: the figures say so (Bytes keeps
		// what ranges fetched before a server stopped serving them).
		job.stats.Ranges, job.stats.Connections = 0, 0
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	// One stream writes the file from its start: the range record no
	// longer says what is there.
	if job.state != nil {
		if err := job.state.f.Truncate(0); err != nil {
			return err
		}
	}
	job.stats.Connections = max(job.stats.Connections, 1)
	rc, err := src.Fetch(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if desc.Digest.Algorithm() != digest.SHA256 {
		vr := content.NewVerifyReader(rc, desc)
		n, err := io.Copy(f, io.TeeReader(vr, &countingWriter{t: t}))
		job.stats.Bytes += n
		if err != nil {
			return err
		}
		return vr.Verify()
	}
	// Read one byte more than the descriptor says, to catch a longer blob.
	h := sha256.New()
	n, err := pipeCopy(f, h, io.LimitReader(rc, desc.Size+1), t)
	job.stats.Bytes += n
	if err != nil {
		return err
	}
	if n != desc.Size {
		return fmt.Errorf("%w: %d bytes, want %d", errSize, n, desc.Size)
	}
	if got := digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil))); got != desc.Digest {
		return fmt.Errorf("%w: got %s", errMismatch, got)
	}
	return nil
}

type stagedFile struct {
	path string // relative to the output dir
	name string // relative to root
	mode fs.FileMode
}

// fetchArchive streams an archive layer through its verifier into a staging
// sub-folder. The layer's digest is checked when the stream ends; a bad
// digest discards everything extracted from it.
func (st *staging) fetchArchive(ctx context.Context, src content.Fetcher, e modelspec.Entry, u *modelspec.Unpacker, p Progress) ([]stagedFile, error) {
	dir := st.dir + "/x-" + e.Layer.Digest.Encoded() + "-" + randSuffix()
	if err := st.root.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	t := track(p, e.Path, e.Layer.Size)
	var files []stagedFile
	err := func() error {
		rc, err := src.Fetch(ctx, e.Layer)
		if err != nil {
			return err
		}
		defer rc.Close()
		vr := content.NewVerifyReader(rc, e.Layer)
		in := io.TeeReader(vr, &countingWriter{t: t})
		err = u.Extract(e, in, func(p string, mode fs.FileMode, size int64, r io.Reader) error {
			name := dir + "/" + p
			if err := st.root.MkdirAll(path.Dir(name), 0o700); err != nil {
				return err
			}
			f, err := st.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, io.LimitReader(r, size))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil && n != size {
				err = io.ErrUnexpectedEOF
			}
			files = append(files, stagedFile{path: p, name: name, mode: mode})
			return err
		})
		if err != nil {
			return err
		}
		// Read what the tar reader left (padding) so the digest covers it all.
		if _, err := io.Copy(io.Discard, in); err != nil {
			return err
		}
		return vr.Verify()
	}()
	t.Done("downloaded", err)
	if err != nil {
		_ = st.root.RemoveAll(dir)
		if isVerifyErr(err) {
			return nil, fmt.Errorf("layer %s: %w: %w", e.Layer.Digest, ErrIntegrity, err)
		}
		return nil, fmt.Errorf("layer %s: %w", e.Layer.Digest, err)
	}
	return files, nil
}

// safeDest checks that the output path p can be written without following
// a symlink: every existing folder on the way must be a real folder, and the
// file itself, if there, a regular file. Folders found good are remembered
// and the walk starts below the deepest one known, so a folder is looked at
// once however many files it holds.
func (st *staging) safeDest(p string) error {
	full := st.out + "/" + p
	from := 0
	for k := len(full); ; {
		if k = strings.LastIndexByte(full[:k], '/'); k < 0 {
			break
		}
		if st.dirs[full[:k]] {
			from = k + 1
			break
		}
	}
	for k := from; ; {
		j := strings.IndexByte(full[k:], '/')
		cur := full
		if j >= 0 {
			cur = full[:k+j]
		}
		fi, err := st.root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if j < 0 {
			if !fi.Mode().IsRegular() {
				return unsafeDest(p, st.osPath(cur), fi.Mode())
			}
			return nil
		}
		if !fi.IsDir() {
			return unsafeDest(p, st.osPath(cur), fi.Mode())
		}
		st.dirs[cur] = true
		k += j + 1
	}
}

// osPath turns a name relative to root into a path for messages.
func (st *staging) osPath(name string) string {
	return filepath.Join(filepath.Dir(st.dirOS), filepath.FromSlash(name))
}

// unsafeDest is the error for a path that meets something other than what
// the model needs: a symlink or special file is refused as unsafe, a folder
// where a file goes (or a file where a folder goes) is a local conflict.
func unsafeDest(p, at string, m fs.FileMode) error {
	if m.IsDir() || m.IsRegular() {
		return &ConflictError{Path: p, At: at, Found: filetype.Name(m)}
	}
	return fmt.Errorf("%w %q: %s in the output directory is a %s", modelspec.ErrUnsafePath, p, at, filetype.Name(m))
}

// commit moves every staged file into the output directory, then removes
// the staging folder.
func (st *staging) commit(entries []modelspec.Entry, files []PulledFile, archived []stagedFile) error {
	if err := st.root.MkdirAll(st.out, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Archive() {
			if err := st.safeDest(e.Path); err != nil {
				return err
			}
		}
	}
	for _, a := range archived {
		if err := st.safeDest(a.path); err != nil {
			return err
		}
	}
	// A blob used by several files is copied for all but the last.
	uses := map[digest.Digest]int{}
	for i, e := range entries {
		if !e.Archive() && files[i].Status != FilePresent {
			uses[e.Layer.Digest]++
		}
	}
	for i, e := range entries {
		if e.Archive() {
			continue
		}
		dest := st.out + "/" + e.Path
		if files[i].Status != FilePresent {
			if err := st.root.MkdirAll(path.Dir(dest), 0o755); err != nil {
				return err
			}
			uses[e.Layer.Digest]--
			var err error
			if uses[e.Layer.Digest] > 0 {
				err = st.copy(st.blob(e.Layer.Digest), dest)
			} else {
				err = st.root.Rename(st.blob(e.Layer.Digest), dest)
			}
			if err != nil {
				return fmt.Errorf("place %q: %w", e.Path, err)
			}
			st.placed++
		}
		if err := st.root.Chmod(dest, e.Mode); err != nil {
			return err
		}
	}
	for _, a := range archived {
		dest := st.out + "/" + a.path
		if err := st.root.MkdirAll(path.Dir(dest), 0o755); err != nil {
			return err
		}
		if err := st.root.Rename(a.name, dest); err != nil {
			return fmt.Errorf("place %q: %w", a.path, err)
		}
		st.placed++
		if err := st.root.Chmod(dest, a.mode); err != nil {
			return err
		}
	}
	return st.root.RemoveAll(st.dir)
}

func (st *staging) copy(from, to string) error {
	in, err := st.root.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := to + ".modelattest-tmp"
	out, err := st.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = st.root.Remove(tmp)
		return err
	}
	return st.root.Rename(tmp, to)
}

// abort removes partial downloads and archive extractions; verified whole
// blobs stay for a re-run. An empty staging folder is removed.
func (st *staging) abort() {
	ents, err := fs.ReadDir(st.root.FS(), st.dir)
	if err != nil {
		return
	}
	n, partials := 0, 0
	for _, e := range ents {
		name := e.Name()
		if !canResume || strings.Contains(name, ".part-") || strings.HasPrefix(name, "x-") || strings.HasPrefix(name, "extra-") {
			_ = st.root.RemoveAll(st.dir + "/" + name)
			continue
		}
		if strings.Contains(name, ".") { // a partial blob and its range record
			partials++
			continue
		}
		n++
	}
	st.nblobs, st.npartial = n, partials/2
	if n+partials == 0 {
		_ = st.root.Remove(st.dir)
	}
}

func (st *staging) kept() int { return st.nblobs }

func randSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// FetchConfig reads and strictly parses a ModelPack config blob.
func FetchConfig(ctx context.Context, src content.Fetcher, desc ocispec.Descriptor) (*modelspec.Config, error) {
	b, err := fetchSmall(ctx, src, desc, "config")
	if err != nil {
		return nil, err
	}
	return modelspec.ParseConfig(b)
}
