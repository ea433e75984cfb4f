package referrers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// DecodePolicy reads a policy's text (YAML, or JSON, which is YAML) into a
// Policy, strictly, so that the text means one thing:
//   - keys are matched exactly, byte for byte: "builderids" or "SIGNATURES"
//     are unknown keys, refused by name (encoding/json alone would match
//     them case-blind, and the last spelling would silently win);
//   - a key repeated in one mapping is refused, at any depth;
//   - one YAML document only; YAML anchors, aliases, merge keys and
//     explicit tags (!!binary, !x) are refused in every part of the text,
//     the admission section included (a value is written where it applies,
//     as it reads).
//
// Nothing is loaded or checked beyond the text: ParsePolicy does the rest.
func DecodePolicy(raw []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the policy is empty", ErrPolicy)
		}
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document (---): a policy is one document", ErrPolicy)
	}
	if err := checkKeys(&doc, reflect.TypeFor[Policy](), ""); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	var generic any
	if err := doc.Decode(&generic); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if _, ok := generic.(map[string]any); !ok {
		return nil, fmt.Errorf("%w: the policy is not a mapping of keys (version, trust, models)", ErrPolicy)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	jd := json.NewDecoder(bytes.NewReader(js))
	jd.DisallowUnknownFields() // a second guard: checkKeys has refused them already
	var p Policy
	if err := jd.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	return &p, nil
}

// checkKeys walks a YAML node beside the Go type it decodes into and
// refuses unknown keys (by exact, case-sensitive comparison with the json
// tags), repeated keys, non-string keys, anchors, aliases and merge keys.
// Values of the wrong type are left to the decoder, which names them.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	where := func(n *yaml.Node) string {
		if path == "" {
			return fmt.Sprintf("line %d", n.Line)
		}
		return fmt.Sprintf("line %d: %s", n.Line, path)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return fmt.Errorf("%s: YAML anchors and aliases are not allowed in a policy; write the value out", where(n))
	}
	if n.Style&yaml.TaggedStyle != 0 {
		// "match: [!!binary Kio=]" reads as one thing and is "**".
		return fmt.Errorf("%s: explicit YAML tag %s is not allowed in a policy; write the value plainly (quoted, for a string)", where(n), n.Tag)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkKeys(c, t, path); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		// A value of another Go type (the admission section's raw JSON, or
		// a type error the decoder names) is still walked: anchors, tags
		// and merge keys are refused in every part of the text.
		elem := t
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			elem = t.Elem()
		}
		for i, c := range n.Content {
			if err := checkKeys(c, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		typed := t.Kind() == reflect.Struct || t.Kind() == reflect.Map
		first := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return fmt.Errorf("%s: merge keys (<<) and complex keys are not allowed in a policy", where(k))
			}
			if k.Anchor != "" || k.Style&yaml.TaggedStyle != 0 {
				return fmt.Errorf("%s: YAML anchors and explicit tags are not allowed in a policy (key %s)", where(k), k.Value)
			}
			if k.Tag != "!!str" {
				return fmt.Errorf("%s: key %s is not a string; quote it", where(k), k.Value)
			}
			if line, dup := first[k.Value]; dup {
				return fmt.Errorf("%s: key %q appears twice (first on line %d)", where(k), k.Value, line)
			}
			first[k.Value] = k.Line
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			elem := t
			switch {
			case !typed: // checked as text only (see above)
			case t.Kind() == reflect.Map:
				elem = t.Elem()
			default:
				f, ok := jsonField(t, k.Value)
				if !ok {
					return unknownKey(t, k, where(k))
				}
				elem = f.Type
			}
			if err := checkKeys(v, elem, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonField finds the field of struct t whose json name is exactly name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// unknownKey names an unknown key and, when it differs from a known one
// only in case, the spelling to write.
func unknownKey(t reflect.Type, k *yaml.Node, where string) error {
	var known []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		if strings.EqualFold(tag, k.Value) {
			return fmt.Errorf("%s: unknown key %q (keys are case-sensitive: write %q)", where, k.Value, tag)
		}
		known = append(known, tag)
	}
	return fmt.Errorf("%s: unknown key %q (known here: %s)", where, k.Value, strings.Join(known, ", "))
}
