package apply

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// plan turns the matched items and the pruned objects into changes and
// writes.
func (p *planner) plan() (*Plan, error) {
	plan := &Plan{}
	var updates, creates []write
	for _, kind := range managedKinds {
		for _, it := range p.items[kind] {
			c, w, err := p.change(it)
			if err != nil {
				return nil, err
			}
			if c == nil {
				continue
			}
			plan.Changes = append(plan.Changes, *c)
			if w.action == Create {
				creates = append(creates, w)
			} else {
				updates = append(updates, w)
			}
		}
	}
	// Deletes go first, so that a renamed object can take the key of a
	// pruned one; updates before creates for the same reason.
	var deletes []write
	var deleted []Change
	for _, kind := range slices.Backward(managedKinds) {
		var cs []Change
		for _, o := range p.stored[kind] {
			if p.pruned[kid{kind, o.ID}] == nil {
				continue
			}
			name, err := p.storedName(o)
			if err != nil {
				return nil, err
			}
			cs = append(cs, Change{Action: Delete, Kind: kind, ID: o.ID, Name: name})
		}
		slices.SortFunc(cs, func(a, b Change) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
		for _, c := range cs {
			deleted = append(deleted, c)
			deletes = append(deletes, write{action: Delete, obj: store.Object{Kind: c.Kind, ID: c.ID}})
		}
	}
	plan.Changes = append(plan.Changes, deleted...)
	for _, c := range deleted {
		if c.Kind == directory.KindUser || c.Kind == directory.KindServicePrincipal {
			plan.removed = append(plan.removed, c.ID)
		}
	}
	plan.disabled = p.disabled
	plan.secrets = p.secrets
	for _, c := range deleted {
		if c.Kind == directory.KindIdentityProvider {
			plan.removedProviders = append(plan.removedProviders, c.ID)
		}
	}
	plan.writes = slices.Concat(deletes, updates, creates)
	return plan, nil
}

// change compares one item with its stored object; nil when nothing
// changes.
func (p *planner) change(it *item) (*Change, write, error) {
	d := descriptor(it.kind)
	desired, err := json.Marshal(it.res)
	if err != nil {
		return nil, write{}, fmt.Errorf("apply: encode %s %s: %w", it.kind, it.res.ObjectID(), err)
	}
	if it.existing == nil {
		it.res.SetCreatedDateTime(p.now)
		obj, err := d.ObjectOf(it.res)
		if err != nil {
			return nil, write{}, fmt.Errorf("apply: %w", err)
		}
		obj.ManagedBy = ManagedBy
		p.keepSecret(it)
		return &Change{Action: Create, Kind: it.kind, ID: obj.ID, Name: it.name}, write{action: Create, obj: obj}, nil
	}
	cur, err := fromObject(*it.existing)
	if err != nil {
		return nil, write{}, fmt.Errorf("apply: %w", err)
	}
	stripReadOnly(cur)
	stored, err := json.Marshal(cur)
	if err != nil {
		return nil, write{}, fmt.Errorf("apply: encode %s %s: %w", it.kind, cur.ObjectID(), err)
	}
	var fields []string
	if !bytes.Equal(desired, stored) { // both canonical: equal bytes, equal objects
		if fields, err = changedFields(desired, stored); err != nil {
			return nil, write{}, fmt.Errorf("apply: compare %s %s: %w", it.kind, cur.ObjectID(), err)
		}
	}
	if it.secret != "" {
		fields = append(fields, "clientSecret")
		slices.Sort(fields)
	}
	if len(fields) == 0 {
		return nil, write{}, nil
	}
	if cur, err = fromObject(*it.existing); err != nil { // again, with its server-set properties
		return nil, write{}, fmt.Errorf("apply: %w", err)
	}
	keepReadOnly(it.res, cur, p.now)
	if enabled(cur) && !enabled(it.res) {
		p.disabled = append(p.disabled, cur.ObjectID())
	}
	obj, err := d.ObjectOf(it.res)
	if err != nil {
		return nil, write{}, fmt.Errorf("apply: %w", err)
	}
	obj.ManagedBy = it.existing.ManagedBy // hand-made objects stay hand-made: never pruned
	c := &Change{Action: Update, Kind: it.kind, ID: obj.ID, Name: it.name, Fields: fields}
	p.keepSecret(it)
	// A change of the client secret alone writes no object.
	secretOnly := len(fields) == 1 && fields[0] == "clientSecret"
	return c, write{action: Update, obj: obj, ifRevision: it.existing.Revision, secretOnly: secretOnly}, nil
}

// changedFields lists the top-level properties whose values differ
// between two encodings of one object, ignoring server-set ones.
func changedFields(a, b []byte) ([]string, error) {
	var ma, mb map[string]any
	if err := json.Unmarshal(a, &ma); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &mb); err != nil {
		return nil, err
	}
	var fields []string
	for _, k := range slices.Sorted(maps.Keys(ma)) {
		if !readOnly[k] && !reflect.DeepEqual(ma[k], mb[k]) {
			fields = append(fields, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(mb)) {
		if _, ok := ma[k]; !ok && !readOnly[k] {
			fields = append(fields, k)
		}
	}
	slices.Sort(fields)
	return fields, nil
}

// storedName is how a plan shows a stored object it deletes.
func (p *planner) storedName(o store.Object) (string, error) {
	r, err := fromObject(o)
	if err != nil {
		return "", fmt.Errorf("apply: %w", err)
	}
	switch a := r.(type) {
	case *directory.RoleAssignment:
		role := a.RoleDefinitionID
		if d, ok := directory.RoleByID(role); ok {
			role = d.DisplayName
		}
		return fmt.Sprintf("%s for %s at %s", role, p.display(a.PrincipalID), a.DirectoryScopeID), nil
	case *rbacAssignment:
		role := a.RoleDefinitionID
		if d, ok := rbac.LookupRole(role); ok {
			role = d.RoleName
		}
		return fmt.Sprintf("%s for %s at %s", role, p.display(a.PrincipalID), a.Scope), nil
	}
	return nameOf(r), nil
}

// duplicates finds entries of a manifest that name the same object as an
// earlier one: the same id, or the same natural key.
func duplicates(m *Manifest) []error {
	var errs []error
	check := func(section, kind string, n int, id func(int) string, key func(int) string) {
		ids, keys := map[string]int{}, map[string]int{}
		for i := range n {
			if v := idKey(id(i)); v != "" {
				if j, dup := ids[v]; dup {
					errs = append(errs, m.errorf(section, i, "id", "duplicate %s id %s, first at %s", noun[kind], id(i), m.describe(section, j)))
					continue
				}
				ids[v] = i
			}
			if v := manifestKey(kind, key(i)); v != "" {
				if j, dup := keys[v]; dup {
					errs = append(errs, m.errorf(section, i, keyField[kind], "duplicate %s %q, first at %s", noun[kind], key(i), m.describe(section, j)))
					continue
				}
				keys[v] = i
			}
		}
	}
	check(secUsers, directory.KindUser, len(m.Users),
		func(i int) string { return m.Users[i].ID }, func(i int) string { return m.Users[i].UserPrincipalName })
	check(secGroups, directory.KindGroup, len(m.Groups),
		func(i int) string { return m.Groups[i].ID }, func(i int) string { return m.Groups[i].DisplayName })
	check(secApplications, directory.KindApplication, len(m.Applications),
		func(i int) string { return m.Applications[i].ID }, func(i int) string { return m.Applications[i].AppID })
	check(secServicePrincipals, directory.KindServicePrincipal, len(m.ServicePrincipals),
		func(i int) string { return m.ServicePrincipals[i].ID }, func(i int) string { return m.ServicePrincipals[i].AppID })
	check(secNamedLocations, directory.KindNamedLocation, len(m.NamedLocations),
		func(i int) string { return m.NamedLocations[i].ID }, func(i int) string { return m.NamedLocations[i].DisplayName })
	check(secCAPolicies, access.Kind, len(m.ConditionalAccessPolicies),
		func(i int) string { return m.ConditionalAccessPolicies[i].ID }, func(i int) string { return m.ConditionalAccessPolicies[i].DisplayName })
	check(secRoleDefinitions, rbac.DefinitionKind, len(m.RoleDefinitions),
		func(i int) string { return m.RoleDefinitions[i].Name }, func(i int) string { return m.RoleDefinitions[i].RoleName })
	check(secDenyAssignments, rbac.DenyKind, len(m.DenyAssignments),
		func(i int) string { return m.DenyAssignments[i].ID }, func(i int) string { return m.DenyAssignments[i].DenyAssignmentName })
	check(secIdentityProviders, directory.KindIdentityProvider, len(m.IdentityProviders),
		func(i int) string { return m.IdentityProviders[i].ID }, func(i int) string { return m.IdentityProviders[i].Issuer })
	check(secAppRoutes, directory.KindAppRoute, len(m.AppRoutes),
		func(i int) string { return m.AppRoutes[i].ID }, func(i int) string { return m.AppRoutes[i].From })
	none := func(int) string { return "" }
	check(secDirectoryRoles, directory.KindRoleAssignment, len(m.DirectoryRoleAssignments),
		func(i int) string { return m.DirectoryRoleAssignments[i].ID }, none)
	check(secRoleAssignments, rbac.Kind, len(m.RoleAssignments),
		func(i int) string { return m.RoleAssignments[i].ID }, none)
	return errs
}

// manifestKey is the comparable form of an entry's natural key, as its
// kind stores it: a route's from URL in its normal form (host without
// case or default port, path with a final "/" and its case kept), any
// other key without case.
func manifestKey(kind, key string) string {
	if kind == directory.KindAppRoute {
		r := directory.AppRoute{From: strings.TrimSpace(key)}
		r.Normalize()
		return r.From
	}
	return refKey(key)
}

// idKey is the comparable form of an id: GUIDs ignore case, the opaque ids
// Graph gives directory role assignments do not.
func idKey(id string) string {
	if directory.IsGUID(id) {
		return strings.ToLower(id)
	}
	return id
}
