package api

import (
	"fmt"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// caPolicy adapts a conditional access policy to the generic collection
// handlers. Notes (what Verity does not evaluate exactly as Entra) ride
// along so a create can show them.
type caPolicy struct {
	*access.Policy
	notes []access.Note
}

func (p *caPolicy) ObjectID() string      { return p.ID }
func (p *caPolicy) SetObjectID(id string) { p.ID = id }
func (p *caPolicy) SetCreatedDateTime(t time.Time) {
	t = t.UTC()
	p.CreatedDateTime, p.ModifiedDateTime = &t, &t
}
func (p *caPolicy) SetModifiedDateTime(t time.Time) { t = t.UTC(); p.ModifiedDateTime = &t }
func (p *caPolicy) Normalize()                      { p.ID = strings.ToLower(p.ID) }

// caPolicyView is a policy as the API shows it on create: Graph's shape
// plus an "@verity.notes" annotation, which Graph clients and strict
// decoders ignore.
type caPolicyView struct {
	*access.Policy
	Notes []string `json:"@verity.notes,omitempty"`
}

func caPolicyKind() resourceKind {
	return resourceKind{
		kind:   access.Kind,
		action: "conditionalAccessPolicies",
		decode: func(body []byte) (directory.Resource, error) {
			p, notes, err := access.ParsePolicy(body)
			if err != nil {
				return nil, err
			}
			return &caPolicy{Policy: p, notes: notes}, nil
		},
		object: func(r directory.Resource) (store.Object, error) {
			p, ok := r.(*caPolicy)
			if !ok {
				return store.Object{}, fmt.Errorf("encode conditional access policy: got %T", r)
			}
			return access.Object(p.Policy)
		},
		view: func(r directory.Resource) any {
			p := r.(*caPolicy)
			v := caPolicyView{Policy: p.Policy}
			for _, n := range p.notes {
				v.Notes = append(v.Notes, n.String())
			}
			return v
		},
	}
}
