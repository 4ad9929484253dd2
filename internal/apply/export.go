package apply

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// Export writes everything the directory holds (users, groups, applications,
// service principals, named locations, identity providers without their
// client secrets, app routes, directory role assignments and Verity role assignments) as a manifest: ids kept, so that applying it to
// a fresh store recreates the same objects; members and principals named;
// server-set properties left out; every section sorted by natural key, so
// the same directory always exports to the same bytes. Applying the
// export to the store it came from changes nothing.
//
// A member or principal id that names no user, group or service principal
// (a dangling reference) cannot be written by name and is left out.
// Pass a store.View reader so that the export reflects one revision.
func Export(ctx context.Context, r store.Reader) (*Manifest, error) {
	res := map[string][]directory.Resource{}
	principals := map[string]principal{}
	for _, kind := range managedKinds {
		objs, err := listAll(ctx, r, kind)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for _, o := range objs {
			v, err := fromObject(o)
			if err != nil {
				return nil, fmt.Errorf("export: %w", err)
			}
			stripReadOnly(v)
			res[kind] = append(res[kind], v)
			if isPrincipal(kind) {
				principals[o.ID] = principal{kind: kind, ref: refOf(v)}
			}
		}
	}
	m := &Manifest{}
	for _, v := range res[directory.KindUser] {
		m.Users = append(m.Users, *v.(*directory.User))
	}
	slices.SortFunc(m.Users, func(a, b directory.User) int {
		return cmp.Or(cmp.Compare(a.Key(), b.Key()), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[directory.KindGroup] {
		g := v.(*directory.Group)
		m.Groups = append(m.Groups, Group{GraphGroup: g.GraphGroup, Members: exportMembers(g.Members, principals)})
	}
	slices.SortFunc(m.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName)), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[directory.KindApplication] {
		m.Applications = append(m.Applications, *v.(*directory.Application))
	}
	slices.SortFunc(m.Applications, func(a, b directory.Application) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[directory.KindServicePrincipal] {
		m.ServicePrincipals = append(m.ServicePrincipals, *v.(*directory.ServicePrincipal))
	}
	slices.SortFunc(m.ServicePrincipals, func(a, b directory.ServicePrincipal) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[directory.KindNamedLocation] {
		m.NamedLocations = append(m.NamedLocations, *v.(*directory.NamedLocation))
	}
	slices.SortFunc(m.NamedLocations, func(a, b directory.NamedLocation) int {
		return cmp.Or(cmp.Compare(a.Key(), b.Key()), cmp.Compare(a.ID, b.ID))
	})
	exportIdentityProviders(m, res[directory.KindIdentityProvider])
	for _, v := range res[directory.KindAppRoute] {
		m.AppRoutes = append(m.AppRoutes, *v.(*directory.AppRoute))
	}
	slices.SortFunc(m.AppRoutes, func(a, b directory.AppRoute) int {
		return cmp.Or(cmp.Compare(a.Key(), b.Key()), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[access.Kind] {
		p := v.(*caPolicy).Policy
		p.CreatedDateTime, p.ModifiedDateTime, p.DeletedDateTime = nil, nil, nil
		m.ConditionalAccessPolicies = append(m.ConditionalAccessPolicies, p)
	}
	slices.SortFunc(m.ConditionalAccessPolicies, func(a, b access.Policy) int {
		return cmp.Or(cmp.Compare(a.Key(), b.Key()), cmp.Compare(a.ID, b.ID))
	})
	customRoles := map[string]string{} // GUID → roleName, how a manifest names a custom role
	for _, v := range res[rbac.DefinitionKind] {
		d := v.(*roleDef).RoleDefinition
		customRoles[d.Name] = d.RoleName
		d.CreatedOn, d.UpdatedOn, d.CreatedBy, d.UpdatedBy, d.SystemData = "", "", "", "", nil
		m.RoleDefinitions = append(m.RoleDefinitions, d)
	}
	slices.SortFunc(m.RoleDefinitions, func(a, b rbac.RoleDefinition) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.RoleName), strings.ToLower(b.RoleName)), cmp.Compare(a.Name, b.Name))
	})
	for _, v := range res[rbac.DenyKind] {
		m.DenyAssignments = append(m.DenyAssignments, v.(*denyAssign).DenyAssignment)
	}
	slices.SortFunc(m.DenyAssignments, func(a, b rbac.DenyAssignment) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.DenyAssignmentName), strings.ToLower(b.DenyAssignmentName)), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[directory.KindRoleAssignment] {
		a := v.(*directory.RoleAssignment)
		pr, ok := principals[a.PrincipalID]
		if !ok {
			continue // dangling: nothing to name
		}
		role := a.RoleDefinitionID
		if d, ok := directory.RoleByID(role); ok {
			role = d.DisplayName
		}
		e := DirectoryRoleAssignment{ID: a.ID, Role: role, DirectoryScopeID: a.DirectoryScopeID}
		setPrincipal(pr, &e.User, &e.Group, &e.ServicePrincipal)
		m.DirectoryRoleAssignments = append(m.DirectoryRoleAssignments, e)
	}
	slices.SortFunc(m.DirectoryRoleAssignments, func(a, b DirectoryRoleAssignment) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), comparePrincipal(a.User, a.Group, a.ServicePrincipal, b.User, b.Group, b.ServicePrincipal),
			cmp.Compare(a.DirectoryScopeID, b.DirectoryScopeID), cmp.Compare(a.ID, b.ID))
	})
	for _, v := range res[rbac.Kind] {
		a := v.(*rbacAssignment)
		pr, ok := principals[a.PrincipalID]
		if !ok {
			continue
		}
		role := a.RoleDefinitionID
		if d, ok := rbac.LookupRole(role); ok {
			role = d.RoleName
		} else if name, ok := customRoles[a.RoleGUID()]; ok {
			role = name
		}
		e := RoleAssignment{ID: a.ID, Role: role, Scope: a.Scope, Description: a.Description}
		setPrincipal(pr, &e.User, &e.Group, &e.ServicePrincipal)
		m.RoleAssignments = append(m.RoleAssignments, e)
	}
	slices.SortFunc(m.RoleAssignments, func(a, b RoleAssignment) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), comparePrincipal(a.User, a.Group, a.ServicePrincipal, b.User, b.Group, b.ServicePrincipal),
			cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.ID, b.ID))
	})
	return m, nil
}

// exportMembers names a group's member ids, each list sorted; nil when
// the group has no member that can be named.
func exportMembers(ids []string, principals map[string]principal) *Members {
	var mem Members
	for _, id := range ids {
		pr, ok := principals[id]
		if !ok {
			continue // dangling
		}
		switch pr.kind {
		case directory.KindUser:
			mem.Users = append(mem.Users, pr.ref)
		case directory.KindGroup:
			mem.Groups = append(mem.Groups, pr.ref)
		case directory.KindServicePrincipal:
			mem.ServicePrincipals = append(mem.ServicePrincipals, pr.ref)
		}
	}
	if len(mem.Users)+len(mem.Groups)+len(mem.ServicePrincipals) == 0 {
		return nil
	}
	byKey := func(a, b string) int { return cmp.Compare(refKey(a), refKey(b)) }
	slices.SortFunc(mem.Users, byKey)
	slices.SortFunc(mem.Groups, byKey)
	slices.SortFunc(mem.ServicePrincipals, byKey)
	return &mem
}

// setPrincipal fills the one principal field of an exported assignment.
func setPrincipal(pr principal, user, group, sp *string) {
	switch pr.kind {
	case directory.KindUser:
		*user = pr.ref
	case directory.KindGroup:
		*group = pr.ref
	default:
		*sp = pr.ref
	}
}

// comparePrincipal orders assignments users first, then groups, then
// service principals, each by name.
func comparePrincipal(au, ag, as, bu, bg, bs string) int {
	rank := func(u, g string) int {
		switch {
		case u != "":
			return 0
		case g != "":
			return 1
		}
		return 2
	}
	_, a, _ := principalRef(au, ag, as)
	_, b, _ := principalRef(bu, bg, bs)
	return cmp.Or(cmp.Compare(rank(au, ag), rank(bu, bg)), cmp.Compare(refKey(a), refKey(b)))
}
