package access

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/verityhq/verity/internal/store"
)

// Kind is the store kind of conditional access policies.
const Kind = "conditionalAccessPolicy"

// Key is a policy's natural key in the store: its display name, compared
// case-insensitively. Verity requires policy names to be unique so that
// policy as code can match them (Entra does not).
func (p *Policy) Key() string { return strings.ToLower(p.DisplayName) }

// Object encodes a policy (with its id set) as a store object.
func Object(p *Policy) (store.Object, error) {
	if p.ID == "" {
		return store.Object{}, fmt.Errorf("encode conditional access policy %q: the policy has no id", p.DisplayName)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode conditional access policy %s: %w", p.ID, err)
	}
	return store.Object{Kind: Kind, ID: p.ID, Key: p.Key(), Body: body}, nil
}

// FromObject decodes a stored policy. Stored bodies were validated when
// written, so it decodes without the strict checks; the object's id wins.
func FromObject(o store.Object) (*Policy, error) {
	if o.Kind != Kind {
		return nil, fmt.Errorf("decode conditional access policy %s: object is of kind %q", o.ID, o.Kind)
	}
	var p Policy
	if err := json.Unmarshal(o.Body, &p); err != nil {
		return nil, fmt.Errorf("decode conditional access policy %s: %w", o.ID, err)
	}
	p.ID = o.ID
	return &p, nil
}
