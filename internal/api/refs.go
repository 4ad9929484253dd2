package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// principalKinds are the kinds a membership or assignment may point at.
var principalKinds = []string{directory.KindUser, directory.KindGroup, directory.KindServicePrincipal}

// findPrincipal returns the kind of the directory object with id, or
// ErrNotFound.
func findPrincipal(ctx context.Context, r store.Reader, id string) (store.Object, error) {
	for _, k := range principalKinds {
		o, err := r.Get(ctx, k, id)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return o, err
		}
	}
	return store.Object{}, store.ErrNotFound
}

// checkReferences enforces the rules that need the rest of the directory:
// members and assignees exist, groups do not contain themselves, and
// directory roles go only to role-assignable groups. It runs inside the
// write transaction, so what it checks is what commits.
func checkReferences(ctx context.Context, tx store.Reader, res directory.Resource) error {
	switch v := res.(type) {
	case *directory.Group:
		for i, m := range v.Members {
			path := strictjson.Index("members", i)
			if m == v.ID {
				return invalid(strictjson.Errorf(path, "a group cannot be a member of itself"))
			}
			o, err := findPrincipal(ctx, tx, m)
			if errors.Is(err, store.ErrNotFound) {
				return invalid(strictjson.Errorf(path, "no user, group or service principal with id %s", m))
			}
			if err != nil {
				return err
			}
			if o.Kind == directory.KindGroup && v.RoleAssignable() {
				return invalid(strictjson.Errorf(path, "a role-assignable group (isAssignableToRole) cannot contain groups"))
			}
			if o.Kind == directory.KindGroup {
				cyc, err := reaches(ctx, tx, m, v.ID)
				if err != nil {
					return err
				}
				if cyc {
					return invalid(strictjson.Errorf(path, "adding group %s would make a membership cycle", m))
				}
			}
		}
	case *directory.IdentityProvider:
		return checkIdentityProvider(ctx, tx, v)
	case *directory.AppRoute:
		return checkAppRoute(ctx, tx, v)
	case *directory.RoleAssignment:
		o, err := findPrincipal(ctx, tx, v.PrincipalID)
		if errors.Is(err, store.ErrNotFound) {
			return invalid(strictjson.Errorf("principalId", "no user, group or service principal with id %s", v.PrincipalID))
		}
		if err != nil {
			return err
		}
		if o.Kind == directory.KindGroup {
			g, err := directory.Groups.FromObject(o)
			if err != nil {
				return err
			}
			if !g.RoleAssignable() {
				return invalid(strictjson.Errorf("principalId", "group %s is not role-assignable (isAssignableToRole); directory roles go only to such groups", v.PrincipalID))
			}
		}
	case *caPolicy:
		if l := v.Conditions.Locations; l != nil {
			for _, list := range []struct {
				name string
				ids  []string
			}{{"includeLocations", l.IncludeLocations}, {"excludeLocations", l.ExcludeLocations}} {
				for j, id := range list.ids {
					if isSpecialLocation(id) {
						continue
					}
					if _, err := tx.Get(ctx, directory.KindNamedLocation, strings.ToLower(id)); errors.Is(err, store.ErrNotFound) {
						return invalid(strictjson.Errorf(strictjson.Index("conditions.locations."+list.name, j), "no named location with id %s", id))
					} else if err != nil {
						return err
					}
				}
			}
		}
	case *rbac.Assignment:
		if err := checkRoleExists(ctx, tx, v); err != nil {
			return err
		}
		o, err := findPrincipal(ctx, tx, v.PrincipalID)
		if errors.Is(err, store.ErrNotFound) {
			return invalid(strictjson.Errorf("principalId", "no user, group or service principal with id %s", v.PrincipalID))
		}
		if err != nil {
			return err
		}
		actual := map[string]string{directory.KindUser: "User", directory.KindGroup: "Group", directory.KindServicePrincipal: "ServicePrincipal"}[o.Kind]
		if v.PrincipalType != "" && v.PrincipalType != actual {
			return invalid(strictjson.Errorf("principalType", "is %s, but %s is a %s", v.PrincipalType, v.PrincipalID, actual))
		}
		v.PrincipalType = actual
	}
	return nil
}

// reaches reports whether group from contains target, transitively, in the
// stored membership graph.
func reaches(ctx context.Context, r store.Reader, from, target string) (bool, error) {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if id == target {
			return true, nil
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		o, err := r.Get(ctx, directory.KindGroup, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		g, err := directory.Groups.FromObject(o)
		if err != nil {
			return false, err
		}
		stack = append(stack, g.Members...)
	}
	return false, nil
}

// removeReferences drops a deleted object from every group and deletes the
// role assignments made to it, in the same transaction as the delete.
func removeReferences(ctx context.Context, tx store.Tx, id string) error {
	if err := store.Each(ctx, tx, directory.KindGroup, func(o store.Object) error {
		g, err := directory.Groups.FromObject(o)
		if err != nil {
			return err
		}
		i := slices.Index(g.Members, id)
		if i < 0 {
			return nil
		}
		g.Members = slices.Delete(g.Members, i, i+1)
		upd, err := directory.Groups.Object(g)
		if err != nil {
			return err
		}
		upd.ManagedBy = o.ManagedBy
		return tx.Update(ctx, upd, 0)
	}); err != nil {
		return err
	}
	for _, kind := range []string{directory.KindRoleAssignment, rbac.Kind} {
		if err := store.Each(ctx, tx, kind, func(o store.Object) error {
			var a struct {
				PrincipalID string `json:"principalId"`
			}
			if err := json.Unmarshal(o.Body, &a); err != nil {
				return fmt.Errorf("%s %s: %w", kind, o.ID, err)
			}
			if a.PrincipalID != id {
				return nil
			}
			return tx.Delete(ctx, kind, o.ID)
		}); err != nil {
			return err
		}
	}
	return nil
}

// ensureOwnerRemains refuses a change that would leave nobody able to
// administer Verity: some enabled user must still hold Owner at scope "/",
// directly or through (nested) group membership.
func ensureOwnerRemains(ctx context.Context, r store.Reader) error {
	ok, err := decision.OwnerRemains(ctx, r)
	if err != nil || ok {
		return err
	}
	return problemf(http.StatusConflict, CodeConflict, "the change would leave no enabled user with the Owner role at scope /; make someone else Owner first")
}

// guardOwners checks, after a change to kind, that an Owner remains.
func guardOwners(ctx context.Context, tx store.Reader, kind string) error {
	if kind == rbac.Kind || kind == directory.KindUser || kind == directory.KindGroup {
		return ensureOwnerRemains(ctx, tx)
	}
	return nil
}

func rbacObject(r directory.Resource) (store.Object, error) {
	a, ok := r.(*rbac.Assignment)
	if !ok {
		return store.Object{}, fmt.Errorf("encode role assignment: got %T", r)
	}
	a.RoleDefinitionName = ""
	body, err := json.Marshal(a)
	if err != nil {
		return store.Object{}, err
	}
	return store.Object{Kind: rbac.Kind, ID: a.ID, Body: body}, nil
}

// checkIDFree refuses to create a principal whose id another principal
// already has: users, groups and service principals share one id space,
// as Graph's directoryObjects do.
func checkIDFree(ctx context.Context, tx store.Reader, kind, id string) error {
	if !slices.Contains(principalKinds, kind) {
		return nil
	}
	o, err := findPrincipal(ctx, tx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return &Problem{Status: http.StatusConflict, Code: CodeConflict, Target: "id", Message: fmt.Sprintf("id %s is already used by a %s", id, o.Kind)}
}

// rejectBinds refuses Graph "<navigation>@odata.bind" properties other
// than members@odata.bind (which the directory decodes into members):
// owners and the like are not modelled, and dropping them silently would
// surprise.
func rejectBinds(body []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil // not an object: the strict decoder explains
	}
	for k := range top {
		if nav, ok := strings.CutSuffix(k, "@odata.bind"); ok && nav != "members" {
			return invalid(strictjson.Errorf(k, "binding %s is not supported; only members@odata.bind is", nav))
		}
	}
	return nil
}

// isSpecialLocation reports the location values that name no named
// location: All, AllTrusted and the legacy MFA trusted IPs.
func isSpecialLocation(id string) bool {
	return strings.EqualFold(id, access.All) || strings.EqualFold(id, "AllTrusted") || id == access.MFATrustedIPsLocation
}

// locationInUse refuses to delete a named location that a conditional
// access policy still names, as Entra does.
func locationInUse(ctx context.Context, r store.Reader, id string) error {
	return store.Each(ctx, r, access.Kind, func(o store.Object) error {
		p, err := access.FromObject(o)
		if err != nil {
			return err
		}
		if l := p.Conditions.Locations; l != nil && (slices.ContainsFunc(l.IncludeLocations, func(s string) bool { return strings.EqualFold(s, id) }) ||
			slices.ContainsFunc(l.ExcludeLocations, func(s string) bool { return strings.EqualFold(s, id) })) {
			return problemf(http.StatusConflict, CodeConflict, "conditional access policy %q (%s) uses this named location; change the policy first", p.DisplayName, p.ID)
		}
		return nil
	})
}
