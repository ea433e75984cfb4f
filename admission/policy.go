package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/modelattest/modelattest/internal/glob"
	"github.com/modelattest/modelattest/oras"
	"github.com/modelattest/modelattest/referrers"
)

// ErrPolicy is wrapped by every error about an admission section that
// cannot be used.
var ErrPolicy = errors.New("invalid admission policy")

// Section is the `admission:` section of the policy file: what the webhook
// looks at, and which break-glass exemptions exist.
type Section struct {
	// Scope lists reference globs (the same form as a rule's match: * within
	// a path segment, ** across segments). A container image is a model
	// reference only when it matches; so are image volumes and oci://
	// storage URIs. Everything else is not this webhook's business.
	// Empty means the match globs of every rule of the policy.
	Scope []string `json:"scope,omitempty"`
	// Exemptions are the only break-glass exemptions an annotation may
	// name; an annotation naming anything else exempts nothing.
	Exemptions []Exemption `json:"exemptions,omitempty"`
}

// Exemption lets a workload through unverified when its object (or its
// namespace) carries the annotation modelattest.dev/exemption: NAME. It is
// never silent: the admission carries an audit annotation, a warning and a
// decision event.
type Exemption struct {
	// Name is what the annotation must say.
	Name string `json:"name"`
	// Namespaces limits where it applies (empty: every namespace the
	// webhook sees).
	Namespaces []string `json:"namespaces,omitempty"`
	// Reason is recorded with every exempted admission (a ticket, an
	// incident).
	Reason string `json:"reason"`
	// Expires, when set (RFC 3339), ends the exemption.
	Expires string `json:"expires,omitempty"`

	expires time.Time
}

// Policy is a loaded policy file: the verification policy and its
// admission section.
type Policy struct {
	*referrers.Policy
	Admission Section

	scope []*regexp.Regexp
}

// LoadPolicy reads the policy file once and parses both the verification
// policy (referrers.ParsePolicy, exactly as `verify` does) and the
// admission section from the same bytes.
func LoadPolicy(ctx context.Context, file string) (*Policy, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", referrers.ErrPolicy, err)
	}
	return ParsePolicy(ctx, raw, filepath.Dir(file))
}

// ParsePolicy is LoadPolicy for bytes already read; dir resolves relative
// paths.
func ParsePolicy(ctx context.Context, raw []byte, dir string) (*Policy, error) {
	rp, err := referrers.ParsePolicy(ctx, raw, dir)
	if err != nil {
		return nil, err
	}
	p := &Policy{Policy: rp}
	if len(rp.Admission) > 0 && string(rp.Admission) != "null" {
		if err := decodeSection(raw, &p.Admission); err != nil {
			return nil, err
		}
	}
	scope := p.Admission.Scope
	if len(scope) == 0 {
		for _, r := range rp.Models {
			scope = append(scope, r.Match...)
		}
	}
	for i, g := range scope {
		// In the canonical form names are in, as the policy's own rules.
		re, err := glob.Compile(oras.CanonicalPattern(g))
		if err != nil {
			return nil, fmt.Errorf("%w: admission.scope[%d] %q: %v", ErrPolicy, i, g, err)
		}
		p.scope = append(p.scope, re)
	}
	seen := map[string]bool{}
	for i := range p.Admission.Exemptions {
		e := &p.Admission.Exemptions[i]
		where := fmt.Sprintf("admission.exemptions[%d]", i)
		if !validAnnotationValue.MatchString(e.Name) {
			return nil, fmt.Errorf("%w: %s: name %q: want letters, digits, '-', '_' or '.'", ErrPolicy, where, e.Name)
		}
		if seen[e.Name] {
			return nil, fmt.Errorf("%w: %s: name %q listed twice", ErrPolicy, where, e.Name)
		}
		seen[e.Name] = true
		if strings.TrimSpace(e.Reason) == "" {
			return nil, fmt.Errorf("%w: %s (%s): no reason: say why this exemption exists", ErrPolicy, where, e.Name)
		}
		if e.Expires != "" {
			if e.expires, err = time.Parse(time.RFC3339, e.Expires); err != nil {
				return nil, fmt.Errorf("%w: %s (%s): expires %q: want RFC 3339", ErrPolicy, where, e.Name, e.Expires)
			}
		}
	}
	return p, nil
}

var validAnnotationValue = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// InScope says whether a model repository (canonical host/name) is this
// webhook's business.
func (p *Policy) InScope(repository string) bool {
	for _, re := range p.scope {
		if re.MatchString(repository) {
			return true
		}
	}
	return false
}

// exemption returns the policy's exemption called name that applies in
// namespace at now, or why there is none.
func (p *Policy) exemption(name, namespace string, now time.Time) (*Exemption, error) {
	for i := range p.Admission.Exemptions {
		e := &p.Admission.Exemptions[i]
		if e.Name != name {
			continue
		}
		if !e.expires.IsZero() && now.After(e.expires) {
			return nil, fmt.Errorf("exemption %q expired at %s", name, e.Expires)
		}
		if len(e.Namespaces) > 0 && !contains(e.Namespaces, namespace) {
			return nil, fmt.Errorf("exemption %q does not apply in namespace %q", name, namespace)
		}
		return e, nil
	}
	return nil, fmt.Errorf("exemption %q is not named in the policy", name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// decodeSection reads the admission section as strictly as the rest of the
// policy is read: keys exactly as spelled here, none repeated, nothing
// unknown.
func decodeSection(raw []byte, into *Section) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil || len(doc.Content) == 0 {
		return fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	root := doc.Content[0]
	var node *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "admission" {
			node = root.Content[i+1]
		}
	}
	if node == nil {
		return nil
	}
	if err := strictKeys(node, reflect.TypeFor[Section](), "admission"); err != nil {
		return fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	var generic any
	if err := node.Decode(&generic); err != nil {
		return fmt.Errorf("%w: admission: %w", ErrPolicy, err)
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return fmt.Errorf("%w: admission: %w", ErrPolicy, err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%w: admission: %w", ErrPolicy, err)
	}
	return nil
}

// strictKeys refuses, in a mapping decoded into t, a key that is not
// exactly a json name of t, or a key given twice.
func strictKeys(n *yaml.Node, t reflect.Type, path string) error {
	switch {
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		for i, c := range n.Content {
			if err := strictKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if seen[k] {
				return fmt.Errorf("line %d: %s: key %q appears twice", n.Content[i].Line, path, k)
			}
			seen[k] = true
			f, ok := fieldByJSONName(t, k)
			if !ok {
				return fmt.Errorf("line %d: %s: unknown key %q", n.Content[i].Line, path, k)
			}
			if err := strictKeys(n.Content[i+1], f.Type, path+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); f.IsExported() && tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
