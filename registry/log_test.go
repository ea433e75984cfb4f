package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/modelattest/modelattest/registry"
)

// syncBuffer is a bytes.Buffer safe for the registry's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDistributionLogsToConfigLogger: the distribution registry's own logs
// reach Config.Logger, a 404 (a client asking "do you have it") at debug
// level; logrus's standard logger, which belongs to the program, is
// neither used nor reconfigured.
func TestDistributionLogsToConfigLogger(t *testing.T) {
	std := logrus.StandardLogger()
	var global syncBuffer
	oldOut, oldLevel, oldFormatter := std.Out, std.GetLevel(), std.Formatter
	std.SetOutput(&global)
	std.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() { std.SetOutput(oldOut); std.SetLevel(oldLevel); std.SetFormatter(oldFormatter) })
	formatter := std.Formatter

	var logs syncBuffer
	srv := newServer(t, registry.Config{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if std.Out != &global || std.GetLevel() != logrus.DebugLevel || std.Formatter != formatter {
		t.Fatal("registry.New reconfigured logrus's standard logger")
	}
	do(t, "GET", srv.URL+"/v2/", nil)
	resp := do(t, "GET", srv.URL+"/v2/models/none/manifests/v1", nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET missing manifest: %s", resp.Status)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if _, request := rec["http.request.uri"]; request && rec["level"] != "DEBUG" {
			t.Errorf("a request served is logged above debug: %v", rec)
		}
		if rec["msg"] == "response completed with error" {
			found = true
			if rec["level"] != "DEBUG" || rec["http.response.status"] != float64(404) || rec["err.code"] != "manifest unknown" {
				t.Errorf("distribution's 404 record: %v", rec)
			}
		}
	}
	if !found {
		t.Errorf("distribution's log did not reach the logger:\n%s", logs.String())
	}
	if global.String() != "" {
		t.Errorf("logs went to logrus's standard logger:\n%s", global.String())
	}
}

// TestStartStopsWhenContextEnds: Start serves until its context ends, then
// shuts down as Close does: Wait returns, the port is released, and the
// referrers index is marked complete (a restart trusts it).
func TestStartStopsWhenContextEnds(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := registry.Start(ctx, registry.Config{Addr: "127.0.0.1:0", RootDir: root})
	if err != nil {
		t.Fatal(err)
	}
	if r := do(t, "GET", "http://"+s.Addr()+"/v2/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/: %s", r.Status)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the registry still serves after its context ended")
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("the port still accepts connections")
	}
	if _, err := os.Stat(filepath.Join(root, "modelattest", "referrers", ".complete")); err != nil {
		t.Errorf("the referrers index is not marked complete: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close after the context ended: %v", err)
	}
}
