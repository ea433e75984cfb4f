package referrers

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

// PolicySchema is the JSON Schema of a policy file (also valid for the
// YAML form, which is read as JSON).
//
//go:embed policy.schema.json
var PolicySchema []byte

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// ValidatePolicySchema checks a policy (YAML or JSON) against PolicySchema
// only: it loads no key and resolves no path.
func ValidatePolicySchema(policy []byte) error {
	js, err := yaml.YAMLToJSON(policy)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	return validateSchema(js)
}

func validateSchema(policyJSON []byte) error {
	schemaOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(PolicySchema))
		if err != nil {
			schemaErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("policy.schema.json", doc); err != nil {
			schemaErr = err
			return
		}
		schema, schemaErr = c.Compile("policy.schema.json")
	})
	if schemaErr != nil {
		return fmt.Errorf("policy schema: %w", schemaErr)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(policyJSON))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if err := schema.Validate(inst); err != nil {
		return fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	return nil
}
