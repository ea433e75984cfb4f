package regtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CompileSchema compiles the JSON Schema at path (relative to the module
// root). Schemas are compiled in tests only: the programs trust their own
// types and the tests hold types and schema in step.
func CompileSchema(t testing.TB, path string) *jsonschema.Schema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(RepoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(path, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

var (
	eventSchemaOnce sync.Once
	eventSchema     *jsonschema.Schema
)

// DecisionEvents parses JSON lines of decision events, checks each against
// events/decision.schema.json, and returns them as generic maps (so tests
// read the wire form, not our Go types).
func DecisionEvents(t testing.TB, jsonl []byte) []map[string]any {
	t.Helper()
	eventSchemaOnce.Do(func() { eventSchema = CompileSchema(t, "events/decision.schema.json") })
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		CheckDecisionEvent(t, []byte(line))
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("event line %d: %v", n, err)
		}
		out = append(out, m)
	}
	return out
}

// CheckDecisionEvent fails the test when one event does not match
// events/decision.schema.json.
func CheckDecisionEvent(t testing.TB, event []byte) {
	t.Helper()
	eventSchemaOnce.Do(func() { eventSchema = CompileSchema(t, "events/decision.schema.json") })
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(event))
	if err != nil {
		t.Fatalf("event is not JSON: %v\n%s", err, event)
	}
	if err := eventSchema.Validate(v); err != nil {
		t.Fatalf("event does not match events/decision.schema.json: %v\n%s", err, event)
	}
}
