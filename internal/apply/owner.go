package apply

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// keepsOwner refuses a plan after which no enabled user holds a writing
// role (Owner) at scope "/", directly or through nested groups, when one
// did before: nobody could administer Verity any more. The admin API
// refuses the same. A store without such an owner (a fresh one) may stay
// without. A time-bound assignment (one that ends, or has not started)
// does not count: it would leave the tenant without an Owner later.
func (p *planner) keepsOwner() {
	if len(p.errs.errs) > 0 {
		return // the plan is refused anyway; its owners may be half resolved
	}
	var before, after []string
	for _, o := range p.stored[rbac.Kind] {
		r, err := fromObject(o)
		if err != nil || !isOwner(r, p.now) {
			continue
		}
		pid := r.(*rbacAssignment).PrincipalID
		before = append(before, pid)
		if k := (kid{rbac.Kind, o.ID}); !p.matched[k] && p.pruned[k] == nil {
			after = append(after, pid)
		}
	}
	for _, it := range p.items[rbac.Kind] {
		if isOwner(it.res, p.now) {
			after = append(after, it.res.(*rbacAssignment).PrincipalID)
		}
	}
	if len(before) == 0 || !enabledUserAmong(before, p.storedPrincipal) || enabledUserAmong(after, p.finalPrincipal) {
		return
	}
	p.errs.add(&Error{Conflict: true, Message: "the plan would leave no enabled user with the Owner role at scope /, directly or through a group, " +
		"locking everyone out of the admin API; keep one in the manifest"})
}

// isOwner reports whether r is an assignment of a writing role at "/",
// in force at now and for good.
func isOwner(r directory.Resource, now time.Time) bool {
	a, ok := r.(*rbacAssignment)
	if !ok {
		return false
	}
	return rbac.IsOwner(a.RoleDefinitionID) && a.Scope == "/" && a.Permanent(now)
}

// enabledUserAmong reports whether an enabled user is among the principals
// ids, or the members of those that are groups, transitively.
func enabledUserAmong(ids []string, lookup func(id string) directory.Resource) bool {
	seen := map[string]bool{}
	for len(ids) > 0 {
		id := ids[len(ids)-1]
		ids = ids[:len(ids)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		switch v := lookup(id).(type) {
		case *directory.User:
			if v.Enabled() {
				return true
			}
		case *directory.Group:
			ids = append(ids, v.Members...)
		}
	}
	return false
}

// storedPrincipal is the user or group with this id as the store holds it;
// nil when there is none (or it cannot be read).
func (p *planner) storedPrincipal(id string) directory.Resource {
	for _, kind := range []string{directory.KindUser, directory.KindGroup} {
		if o := p.byID[kind][id]; o != nil {
			if r, err := fromObject(*o); err == nil {
				return r
			}
		}
	}
	return nil
}

// finalPrincipal is the principal with this id as the plan leaves it; nil
// when there is none or the plan deletes it.
func (p *planner) finalPrincipal(id string) directory.Resource {
	if pr, ok := p.principals[id]; ok && !p.isPruned(id) {
		return pr.res
	}
	return nil
}

// signOut revokes the API tokens of the users and service principals the
// plan disabled or deleted, and removes the credentials of those it
// deleted, as the admin API does; nothing they signed in with outlives
// them. Tokens and credentials live outside the object transaction, so
// this runs after the commit.
func (p *Plan) signOut(ctx context.Context, st store.Store) error {
	var errs []error
	for _, id := range p.disabled {
		if err := st.DeletePrincipalTokens(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("revoke tokens of %s: %w", id, err))
		}
	}
	for _, id := range p.removed {
		if err := st.DeletePrincipalTokens(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("revoke tokens of %s: %w", id, err))
		}
		if err := st.DeleteCredentials(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("remove credentials of %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// enabled reports whether r is a user or service principal that may sign
// in; other kinds report false.
func enabled(r directory.Resource) bool {
	switch v := r.(type) {
	case *directory.User:
		return v.Enabled()
	case *directory.ServicePrincipal:
		return v.Enabled()
	}
	return false
}
