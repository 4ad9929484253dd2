package decision

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// OwnerRemains reports whether r (a transaction's view, usually after its
// own writes) still has an enabled user holding the Owner role at scope
// "/", directly or through groups, nested. Every change that could take
// the last one away checks it before it commits: the API's deletes and
// membership changes, manifests, and the group memberships an external
// identity provider maintains. Only a standing assignment counts: one with
// an end (an activation of Privileged Identity Management) or a start
// still to come would leave the tenant without an Owner later.
func OwnerRemains(ctx context.Context, r store.Reader) (bool, error) {
	var owners []string
	now := time.Now()
	if err := store.Each(ctx, r, rbac.Kind, func(o store.Object) error {
		var a rbac.Assignment
		if err := json.Unmarshal(o.Body, &a); err != nil {
			return err
		}
		if rbac.IsOwner(a.RoleDefinitionID) && a.Scope == "/" && a.Permanent(now) {
			owners = append(owners, a.PrincipalID)
		}
		return nil
	}); err != nil {
		return false, err
	}
	seen := map[string]bool{}
	for len(owners) > 0 {
		id := owners[len(owners)-1]
		owners = owners[:len(owners)-1]
		if seen[id] {
			continue
		}
		seen[id] = true
		o, err := findPrincipal(ctx, r, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		switch o.Kind {
		case directory.KindUser:
			u, err := directory.Users.FromObject(o)
			if err != nil {
				return false, err
			}
			if u.Enabled() {
				return true, nil
			}
		case directory.KindGroup:
			g, err := directory.Groups.FromObject(o)
			if err != nil {
				return false, err
			}
			owners = append(owners, g.Members...)
		}
	}
	return false, nil
}

// findPrincipal returns the directory object with id: a user, group or
// service principal.
func findPrincipal(ctx context.Context, r store.Reader, id string) (store.Object, error) {
	for _, k := range []string{directory.KindUser, directory.KindGroup, directory.KindServicePrincipal} {
		o, err := r.Get(ctx, k, id)
		if err == nil || !errors.Is(err, store.ErrNotFound) {
			return o, err
		}
	}
	return store.Object{}, store.ErrNotFound
}
