package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
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
		kind:      access.Kind,
		action:    "conditionalAccessPolicies",
		operation: "Verity.Access/policies",
		scope:     "/access/policies",
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

// evaluate answers What If: Graph's POST /identity/conditionalAccess/evaluate
// against the live directory and policies. Nothing is enforced or
// recorded beyond the audit entry of the call itself.
func (s *Server) evaluate(w http.ResponseWriter, r *http.Request, c *call) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return invalid(err)
	}
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	req, err := access.ParseEvaluateRequest(body)
	if err != nil {
		return invalid(err)
	}
	snap, eng, err := s.accessEngine(r.Context())
	if err != nil {
		return err
	}
	dir := snap.Directory()
	switch {
	case req.UserID != "":
		if _, ok := dir.User(req.UserID); !ok {
			return invalid(strictjson.Errorf("signInIdentity.userId", "no user with id %s", req.UserID))
		}
		req.Resolve(access.SnapshotPrincipals{Snapshot: dir})
	case req.ServicePrincipalID != "":
		if _, ok := dir.ServicePrincipal(req.ServicePrincipalID); !ok {
			if _, ok := dir.ServicePrincipalByAppID(req.ServicePrincipalID); !ok {
				return invalid(strictjson.Errorf("signInIdentity.servicePrincipalId", "no service principal with id or appId %s", req.ServicePrincipalID))
			}
		}
	}
	if req.Country == "" && req.IP.IsValid() && s.opts.Geo != nil {
		cc, err := s.opts.Geo.Country(req.IP)
		if err != nil {
			s.log.Warn("evaluate: country lookup failed", "requestId", c.requestID, "err", err)
		}
		req.Country = cc
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	var res access.Result
	eng.Evaluate(req, &res)
	out := res.WhatIf()
	c.details = map[string]any{"outcome": out.Result.Outcome, "revision": snap.Revision()}
	return writeJSON(w, http.StatusOK, out)
}

// accessEngine returns a snapshot with the caller's writes and its
// conditional access engine. Without an engine (the stored policies do not
// compile) the answer is an error: conditional access fails closed.
func (s *Server) accessEngine(ctx context.Context) (*decision.Snapshot, *access.Engine, error) {
	snap, err := s.fresh(ctx)
	if err != nil {
		return nil, nil, err
	}
	eng, err := snap.Access()
	if err != nil {
		return nil, nil, &Problem{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "the conditional access policies could not be compiled; see the node's log", Err: err}
	}
	return snap, eng, nil
}
