package integration

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelattest/modelattest/internal/regtest"
)

// maStdout runs the CLI with its own HOME and returns stdout alone (the
// JSON), failing the test on a non-zero exit.
func maStdout(t *testing.T, home string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(modelattest, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "DOCKER_CONFIG="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("modelattest %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

// pushJSON is the documented shape of push --format json (docs/TRANSFER.md).
type pushJSON struct {
	Reference string `json:"reference"`
	Manifest  struct {
		Digest string `json:"digest"`
	} `json:"manifest"`
	Blobs []struct {
		Path        string `json:"path"`
		Digest      string `json:"digest"`
		Size        int64  `json:"size"`
		Status      string `json:"status"`
		MountedFrom string `json:"mountedFrom"`
		SentBytes   *int64 `json:"sentBytes"`
	} `json:"blobs"`
	Bytes     *int64   `json:"bytes"`
	SentBytes *int64   `json:"sentBytes"`
	Seconds   *float64 `json:"seconds"`
}

// pullJSON is the part of pull --format json this test reads.
type pullJSON struct {
	Manifest struct {
		Digest string `json:"digest"`
	} `json:"manifest"`
	Files []struct {
		Path     string `json:"path"`
		Digest   string `json:"digest"`
		Size     int64  `json:"size"`
		Status   string `json:"status"`
		Transfer *struct {
			Bytes       int64    `json:"bytes"`
			Seconds     *float64 `json:"seconds"`
			Ranges      int      `json:"ranges"`
			Connections int      `json:"connections"`
		} `json:"transfer"`
	} `json:"files"`
	Bytes   *int64   `json:"bytes"`
	Seconds *float64 `json:"seconds"`
}

// TestTransferSummaryJSON: push and pull --format json say, per file, what
// moved. A model pushed, pulled by another user of the same registry and
// pushed by them to another repository is mounted there, not sent: the
// pull recorded where its blobs came from in the digest cache.
func TestTransferSummaryJSON(t *testing.T) {
	const wsize = 40 << 20 // over 32 MiB: pulled in byte ranges
	host := regtest.Embedded(t, "")
	model := regtest.ModelDir(t, wsize)
	alice, bob := t.TempDir(), t.TempDir()

	var first pushJSON
	if err := json.Unmarshal(maStdout(t, alice, "push", "--plain-http", "--format", "json", host+"/models/source:v1", model), &first); err != nil {
		t.Fatal(err)
	}
	if first.Reference != host+"/models/source:v1" || !strings.HasPrefix(first.Manifest.Digest, "sha256:") {
		t.Fatalf("reference %q, manifest %q", first.Reference, first.Manifest.Digest)
	}
	if first.Bytes == nil || first.SentBytes == nil || first.Seconds == nil || *first.Bytes < wsize || *first.SentBytes != *first.Bytes || *first.Seconds <= 0 {
		t.Fatalf("totals: bytes %v, sent %v, seconds %v", first.Bytes, first.SentBytes, first.Seconds)
	}
	if len(first.Blobs) != 6 {
		t.Fatalf("%d blobs, want the model's 6 files", len(first.Blobs))
	}
	for _, b := range first.Blobs {
		if b.Status != "uploaded" || b.SentBytes == nil || *b.SentBytes != b.Size || !strings.HasPrefix(b.Digest, "sha256:") || b.Path == "" {
			t.Errorf("first push, %+v: want uploaded whole", b)
		}
	}

	out := filepath.Join(t.TempDir(), "model")
	var pulled pullJSON
	if err := json.Unmarshal(maStdout(t, bob, "pull", "--plain-http", "--insecure-skip-verify", "--format", "json", host+"/models/source:v1", "-o", out), &pulled); err != nil {
		t.Fatal(err)
	}
	if pulled.Manifest.Digest != first.Manifest.Digest || len(pulled.Files) != 6 || pulled.Bytes == nil || *pulled.Bytes != *first.Bytes || pulled.Seconds == nil || *pulled.Seconds <= 0 {
		t.Fatalf("pull summary: %+v", pulled)
	}
	for _, f := range pulled.Files {
		tr := f.Transfer
		if f.Status != "downloaded" || tr == nil || tr.Bytes != f.Size || tr.Seconds == nil || tr.Connections < 1 {
			t.Errorf("pull, %s: %s, transfer %+v; want downloaded, every byte fetched, on at least one connection", f.Path, f.Status, tr)
			continue
		}
		if big := f.Size >= 32<<20; big != (tr.Ranges > 0) {
			t.Errorf("pull, %s (%d bytes): %d ranges; want ranges exactly for files of 32 MiB or more", f.Path, f.Size, tr.Ranges)
		}
	}

	var second pushJSON
	if err := json.Unmarshal(maStdout(t, bob, "push", "--plain-http", "--format", "json", host+"/team/copy:v1", out), &second); err != nil {
		t.Fatal(err)
	}
	if second.Manifest.Digest != first.Manifest.Digest {
		t.Fatalf("manifest %s, want %s", second.Manifest.Digest, first.Manifest.Digest)
	}
	for _, b := range second.Blobs {
		if b.Status != "mounted" || b.MountedFrom != "models/source" || *b.SentBytes != 0 {
			t.Errorf("second push, %s: %s from %q, %d bytes sent; want mounted from models/source", b.Path, b.Status, b.MountedFrom, *b.SentBytes)
		}
	}
	if *second.SentBytes != 0 {
		t.Errorf("second push sent %d bytes, want 0", *second.SentBytes)
	}

	// The same push again: the registry has every blob.
	var third pushJSON
	if err := json.Unmarshal(maStdout(t, bob, "push", "--plain-http", "--format", "json", host+"/team/copy:v1", out), &third); err != nil {
		t.Fatal(err)
	}
	for _, b := range third.Blobs {
		if b.Status != "skipped" {
			t.Errorf("third push, %s: %s, want skipped", b.Path, b.Status)
		}
	}
}
