package referrers

import (
	"encoding/json"
	"fmt"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/opencontainers/go-digest"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// NewStatement builds an in-toto Statement v1 about the model manifest
// digest subject with the given predicate (any JSON object). It is marshalled
// with protojson: the in-toto Go types are protobuf messages, and their
// encoding/json tags do not follow the spec.
func NewStatement(subject digest.Digest, name, predicateType string, predicate json.RawMessage) ([]byte, error) {
	if err := subject.Validate(); err != nil {
		return nil, fmt.Errorf("statement subject: %w", err)
	}
	if predicateType == "" {
		return nil, fmt.Errorf("statement: no predicate type")
	}
	if len(predicate) == 0 {
		predicate = json.RawMessage("{}")
	}
	pred := &structpb.Struct{}
	if err := protojson.Unmarshal(predicate, pred); err != nil {
		return nil, fmt.Errorf("predicate: not a JSON object: %w", err)
	}
	st := &intoto.Statement{
		Type: intoto.StatementTypeUri,
		Subject: []*intoto.ResourceDescriptor{{
			Name:   name,
			Digest: map[string]string{subject.Algorithm().String(): subject.Encoded()},
		}},
		PredicateType: predicateType,
		Predicate:     pred,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	return protojson.Marshal(st)
}

// Statement is an in-toto statement as read from a verified bundle; v1 and
// v0.1 share this shape.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is one subject of a statement.
type Subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// ParseStatement reads an in-toto statement (v1 or v0.1).
func ParseStatement(b []byte) (*Statement, error) {
	var s Statement
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if s.Type != StatementV1 && s.Type != StatementV01 {
		return nil, fmt.Errorf("statement: _type %q is not an in-toto statement", s.Type)
	}
	if s.PredicateType == "" {
		return nil, fmt.Errorf("statement: no predicateType")
	}
	return &s, nil
}

// Names reports whether the statement has d among its subjects.
func (s *Statement) Names(d digest.Digest) bool {
	for _, sub := range s.Subject {
		if sub.Digest[d.Algorithm().String()] == d.Encoded() {
			return true
		}
	}
	return false
}
