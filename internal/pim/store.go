package pim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

func eachEligibility(ctx context.Context, r store.Reader, fn func(*Eligibility) error) error {
	return store.Each(ctx, r, EligibilityKind, func(o store.Object) error {
		e, err := readEligibility(o)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// Eligibilities lists the eligibilities (all, or a principal's).
func Eligibilities(ctx context.Context, r store.Reader, principalID string) ([]Eligibility, error) {
	var out []Eligibility
	err := eachEligibility(ctx, r, func(e *Eligibility) error {
		if principalID == "" || e.PrincipalID == principalID {
			out = append(out, *e)
		}
		return nil
	})
	return out, err
}

// putEligibility stores an eligibility under its natural key (creating
// it, or replacing it by id). A duplicate made before duplicates were
// refused, whose key the other holds, is replaced without one.
func putEligibility(ctx context.Context, tx store.Tx, e *Eligibility, create bool) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	obj := store.Object{Kind: EligibilityKind, ID: e.ID, Key: e.naturalKey(), Body: body}
	if create {
		err := tx.Create(ctx, obj)
		if errors.Is(err, store.ErrConflict) {
			return ErrEligibilityExists
		}
		return err
	}
	if o, err := tx.GetByKey(ctx, EligibilityKind, obj.Key); err == nil && o.ID != e.ID {
		obj.Key = ""
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return tx.Put(ctx, obj)
}

// putRequest stores a request. A pending one holds the natural key of
// its type, principal, role and scope, so that the store itself keeps a
// second pending request for the same out (and finds it without a scan).
func putRequest(ctx context.Context, tx store.Tx, r *Request) error {
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	obj := store.Object{Kind: RequestKind, ID: r.ID, Body: body}
	if r.Status == StatusPendingApproval {
		obj.Key = pendingKey(r)
	}
	err = tx.Put(ctx, obj)
	if errors.Is(err, store.ErrConflict) {
		return ErrPending
	}
	return err
}

// pendingKey is the natural key of a pending request. A request to
// extend an active assignment is apart from one to extend the
// eligibility of the same role; the other keys leave the target out, so
// that pending requests stored before keep theirs.
func pendingKey(r *Request) string {
	k := r.RequestType + "\x00" + key(r.RoleKind, r.PrincipalID, r.RoleDefinitionID, r.Scope)
	if r.Target == TargetAssignment && (r.RequestType == SelfExtend || r.RequestType == SelfRenew) {
		k += "\x00" + TargetAssignment
	}
	sum := sha256.Sum256([]byte(k))
	return "pending:" + hex.EncodeToString(sum[:16])
}

func getRequest(ctx context.Context, r store.Reader, id string) (*Request, error) {
	o, err := r.Get(ctx, RequestKind, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var req Request
	if err := json.Unmarshal(o.Body, &req); err != nil {
		return nil, fmt.Errorf("request %s: %w", id, err)
	}
	return &req, nil
}

// GetRequest returns a request by id (ErrNotFound when none).
func GetRequest(ctx context.Context, r store.Reader, id string) (Request, error) {
	req, err := getRequest(ctx, r, id)
	if err != nil {
		return Request{}, err
	}
	return *req, nil
}

// Requests lists the requests, oldest first, that keep returns true for.
func Requests(ctx context.Context, r store.Reader, keep func(*Request) bool) ([]Request, error) {
	var out []Request
	err := store.Each(ctx, r, RequestKind, func(o store.Object) error {
		var req Request
		if err := json.Unmarshal(o.Body, &req); err != nil {
			return fmt.Errorf("request %s: %w", o.ID, err)
		}
		if keep == nil || keep(&req) {
			out = append(out, req)
		}
		return nil
	})
	return out, err
}

// pendingFor reports whether a request of the same type for the same
// principal, role and scope waits for approval.
func pendingFor(ctx context.Context, r store.Reader, req *Request) (bool, error) {
	_, err := r.GetByKey(ctx, RequestKind, pendingKey(req))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// canonicalRole is a role id as requests and eligibilities keep it: an
// RBAC role by its full definition id, whichever form names it.
func canonicalRole(roleKind, role string) string {
	if roleKind == RoleKindRBAC || roleKind == "" {
		if r, ok := rbac.LookupRole(role); ok {
			return r.ID
		}
	}
	return role
}

// policyID is the store id of a role's settings at a scope.
func policyID(roleKind, role, scope string) string {
	role = canonicalRole(roleKind, role)
	sum := sha256.Sum256([]byte(roleKind + "\x00" + strings.ToLower(role) + "\x00" + strings.ToLower(scope)))
	return hex.EncodeToString(sum[:16])
}

// PolicyRecord is a role's stored settings at a scope.
type PolicyRecord struct {
	RoleKind         string `json:"roleKind"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	Scope            string `json:"scope"`
	Policy
}

// policyIn returns the role's settings at the scope: stored, else the
// default. Settings are per role and scope, not inherited (as in PIM).
func policyIn(ctx context.Context, r store.Reader, roleKind, role, scope string) (Policy, error) {
	o, err := r.Get(ctx, PolicyKind, policyID(roleKind, role, scope))
	if errors.Is(err, store.ErrNotFound) {
		return DefaultPolicy(), nil
	}
	if err != nil {
		return Policy{}, err
	}
	var p PolicyRecord
	if err := json.Unmarshal(o.Body, &p); err != nil {
		return Policy{}, fmt.Errorf("role settings %s: %w", o.ID, err)
	}
	return p.Policy, nil
}

// GetPolicy returns the role's settings at the scope (the default when
// none are stored).
func GetPolicy(ctx context.Context, r store.Reader, roleKind, role, scope string) (Policy, error) {
	return policyIn(ctx, r, roleKind, role, scope)
}

// SetPolicy stores the role's settings at the scope, in a transaction
// that carries its audit record (actor, "pim.setPolicy").
func (s *Service) SetPolicy(ctx context.Context, actor string, rec PolicyRecord) error {
	if err := rec.Policy.Validate(); err != nil {
		return invalid("policy", err.Error())
	}
	if rec.RoleKind == "" {
		rec.RoleKind = RoleKindRBAC
	}
	rec.RoleDefinitionID = canonicalRole(rec.RoleKind, rec.RoleDefinitionID)
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	ctx, _ = store.AuditWith(ctx, func(rev int64, _ []store.Change) store.AuditEvent {
		details, _ := json.Marshal(map[string]any{"revision": rev, "roleKind": rec.RoleKind, "roleDefinitionId": rec.RoleDefinitionID,
			"scope": rec.Scope, "policy": rec.Policy.audited()})
		return store.AuditEvent{Time: s.now(), Actor: actor, Action: "pim.setPolicy", Target: "/pim/policies/" + policyID(rec.RoleKind, rec.RoleDefinitionID, rec.Scope),
			Result: "success", Details: details}
	})
	_, err = s.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, store.Object{Kind: PolicyKind, ID: policyID(rec.RoleKind, rec.RoleDefinitionID, rec.Scope), Body: body})
	})
	return err
}
