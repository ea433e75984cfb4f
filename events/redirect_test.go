package events_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelattest/modelattest/events"
	"github.com/modelattest/modelattest/referrers"
)

// TestHTTPSinkHeadersStayWithTheCollector: the headers of $EVENTS_HEADERS
// are credentials of the collector's host (DESIGN.md rule 9). A collector
// that redirects to another host does not get them sent there, nor the
// events (old code: net/http followed the 307 and re-sent X-Api-Key, and
// Authorization too for the same host name on another port, to the
// redirect target).
func TestHTTPSinkHeadersStayWithTheCollector(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		for _, h := range []string{"Authorization", "X-Api-Key"} {
			if v := r.Header.Get(h); v != "" {
				leaked = append(leaked, h+": "+v)
			}
		}
	}))
	t.Cleanup(thief.Close)
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, thief.URL+"/collect", code)
		}))
		t.Cleanup(front.Close)
		s, err := events.NewHTTPSink(events.HTTPOptions{URL: front.URL, MaxAttempts: 1,
			Headers: http.Header{"Authorization": {"Splunk secret-token"}, "X-Api-Key": {"secret-key"}}})
		if err != nil {
			t.Fatal(err)
		}
		s.Emit(events.FromReport(report(true, referrers.ModeEnforce), events.Options{}))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = s.Close(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "not delivered") {
			t.Errorf("%d: a redirected delivery should count as not delivered, got %v", code, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Fatalf("credentials sent to the redirect target: %v", leaked)
	}
}
