package referrers

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// ErrPredicate is wrapped by every error about a predicate that is not
// what its type requires.
var ErrPredicate = errors.New("invalid predicate")

// Provenance is what a user says about how a model was built; Predicate
// turns it into a SLSA provenance v1 predicate.
type Provenance struct {
	// BuilderID identifies the trusted build platform (runDetails.builder.id).
	BuilderID string
	// BuildType says how to read the parameters (buildDefinition.buildType).
	BuildType string
	// ExternalParameters are the inputs the user controlled: the training
	// recipe, its repository and ref, hyper-parameters.
	ExternalParameters map[string]any
	// Dependencies are the resolved inputs: training datasets, the base
	// model, the training code, each by URI and digest.
	Dependencies []Dependency
	// InvocationID identifies this run.
	InvocationID string
	// StartedOn and FinishedOn bound the run (zero: left out).
	StartedOn, FinishedOn time.Time
}

// Dependency is one resolved input of a build.
type Dependency struct {
	Name   string            `json:"name,omitempty"`
	URI    string            `json:"uri,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// ParseDependency reads "uri=URI,digest=ALG:HEX[,name=NAME]" (the form of
// --dependency); digest may repeat for several algorithms.
func ParseDependency(s string) (Dependency, error) {
	d := Dependency{Digest: map[string]string{}}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return d, fmt.Errorf("dependency %q: want uri=URI,digest=ALG:HEX[,name=NAME]", s)
		}
		switch k {
		case "uri":
			d.URI = v
		case "name":
			d.Name = v
		case "digest":
			alg, hex, ok := strings.Cut(v, ":")
			if !ok {
				return d, fmt.Errorf("dependency %q: digest %q: want ALG:HEX", s, v)
			}
			d.Digest[alg] = hex
		default:
			return d, fmt.Errorf("dependency %q: unknown key %q", s, k)
		}
	}
	if len(d.Digest) == 0 {
		d.Digest = nil
	}
	return d, checkDependency(d, 0)
}

var digestLen = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40, "gitCommit": 40, "sha3_256": 64, "sha3_384": 96, "sha3_512": 128, "sha224": 56, "sha512_224": 56, "sha512_256": 64}

var lowerHex = regexp.MustCompile(`^[0-9a-f]+$`)

func checkDependency(d Dependency, i int) error {
	if d.URI == "" && len(d.Digest) == 0 {
		return fmt.Errorf("%w: resolvedDependencies[%d]: needs a uri or a digest", ErrPredicate, i)
	}
	for alg, v := range d.Digest {
		n, known := digestLen[alg]
		if known && (len(v) != n || !lowerHex.MatchString(v)) {
			return fmt.Errorf("%w: resolvedDependencies[%d] (%s): %s digest %q is not %d lowercase hex digits", ErrPredicate, i, d.URI, alg, v, n)
		}
		if !known && v == "" {
			return fmt.Errorf("%w: resolvedDependencies[%d] (%s): empty %s digest", ErrPredicate, i, d.URI, alg)
		}
	}
	return nil
}

// Predicate builds and validates the SLSA provenance v1 predicate.
func (p Provenance) Predicate() (json.RawMessage, error) {
	ext := p.ExternalParameters
	if ext == nil {
		ext = map[string]any{}
	}
	bd := map[string]any{"buildType": p.BuildType, "externalParameters": ext}
	if len(p.Dependencies) > 0 {
		bd["resolvedDependencies"] = p.Dependencies
	}
	rd := map[string]any{"builder": map[string]any{"id": p.BuilderID}}
	md := map[string]any{}
	if p.InvocationID != "" {
		md["invocationId"] = p.InvocationID
	}
	if !p.StartedOn.IsZero() {
		md["startedOn"] = p.StartedOn.UTC().Format(time.RFC3339)
	}
	if !p.FinishedOn.IsZero() {
		md["finishedOn"] = p.FinishedOn.UTC().Format(time.RFC3339)
	}
	if len(md) > 0 {
		rd["metadata"] = md
	}
	b, err := json.Marshal(map[string]any{"buildDefinition": bd, "runDetails": rd})
	if err != nil {
		return nil, err
	}
	if err := ValidateProvenance(b); err != nil {
		return nil, err
	}
	return b, nil
}

// ValidateProvenance checks a SLSA provenance v1 predicate: it parses as
// the spec's schema (unknown fields are refused), has buildDefinition
// (buildType, externalParameters), runDetails.builder.id, and every
// resolved dependency names a uri or a well-formed digest.
func ValidateProvenance(predicate json.RawMessage) error {
	var p slsa.Provenance
	if err := protojson.Unmarshal(predicate, &p); err != nil {
		return fmt.Errorf("%w: SLSA provenance v1: %w", ErrPredicate, err)
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: SLSA provenance v1: %w", ErrPredicate, err)
	}
	for i, rd := range p.GetBuildDefinition().GetResolvedDependencies() {
		if err := checkDependency(Dependency{URI: rd.GetUri(), Digest: rd.GetDigest()}, i); err != nil {
			return err
		}
	}
	return nil
}
