package apply

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// principalKinds maps an assignment's principal field to its kind.
var principalKinds = map[string]string{
	"user":             directory.KindUser,
	"group":            directory.KindGroup,
	"servicePrincipal": directory.KindServicePrincipal,
}

// principalTypes maps a principal kind to rbac's principalType.
var principalTypes = map[string]string{
	directory.KindUser:             "User",
	directory.KindGroup:            "Group",
	directory.KindServicePrincipal: "ServicePrincipal",
}

// assignee resolves the one principal an assignment names.
func (p *planner) assignee(section string, i int, user, group, sp string) (field, id string, ok bool) {
	field, ref, n := principalRef(user, group, sp)
	if n != 1 {
		p.failf(section, i, "", "name exactly one principal: user, group or servicePrincipal")
		return "", "", false
	}
	id, ok = p.resolve(section, i, field, principalKinds[field], ref)
	return field, id, ok
}

// display names a principal in a plan: user alice@contoso.com,
// group "Platform Engineers".
func (p *planner) display(id string) string {
	pr, ok := p.principals[id]
	switch {
	case !ok:
		return "principal " + id
	case pr.kind == directory.KindUser:
		return "user " + pr.name
	case pr.kind == directory.KindGroup:
		return fmt.Sprintf("group %q", pr.name)
	}
	return fmt.Sprintf("servicePrincipal %q", pr.name)
}

// renamePath moves a validation error from the stored field to the
// manifest field that produced it.
func renamePath(err error, names map[string]string) error {
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		if to, ok := names[fe.Path]; ok {
			return strictjson.Errorf(to, "%s", fe.Message)
		}
	}
	return err
}

// directoryRoleAssignments resolves and validates the manifest's Entra
// role assignments and matches them with stored ones.
func (p *planner) directoryRoleAssignments() {
	var items []*item
	for i, a := range p.m.DirectoryRoleAssignments {
		sec := secDirectoryRoles
		field, pid, ok := p.assignee(sec, i, a.User, a.Group, a.ServicePrincipal)
		if !ok {
			continue
		}
		role, ok := directoryRole(p.roles, a.Role)
		if !ok {
			if a.Role == "" {
				p.failf(sec, i, "role", "required")
			} else {
				p.failf(sec, i, "role", "no built-in directory role %q (give its display name or template id)", a.Role)
			}
			continue
		}
		if pr := p.principals[pid]; pr.kind == directory.KindGroup && !pr.res.(*directory.Group).RoleAssignable() {
			p.failf(sec, i, field, "group %q cannot hold a directory role: it needs isAssignableToRole: true", pr.name)
			continue
		}
		ra := &directory.RoleAssignment{ID: a.ID, PrincipalID: pid, RoleDefinitionID: role.TemplateID, DirectoryScopeID: a.DirectoryScopeID}
		ra.Normalize()
		if err := ra.Validate(); err != nil {
			p.fail(sec, i, "", renamePath(err, map[string]string{"principalId": field, "roleDefinitionId": "role"}))
			continue
		}
		items = append(items, &item{
			kind: directory.KindRoleAssignment, section: sec, index: i, res: ra, key: assignmentKey(ra),
			name: fmt.Sprintf("%s for %s at %s", role.DisplayName, p.display(pid), ra.DirectoryScopeID),
		})
	}
	p.matchAssignments(directory.KindRoleAssignment, items)
}

// roleAssignments resolves and validates the manifest's Verity role
// assignments and matches them with stored ones.
func (p *planner) roleAssignments() {
	var items []*item
	for i, a := range p.m.RoleAssignments {
		sec := secRoleAssignments
		field, pid, ok := p.assignee(sec, i, a.User, a.Group, a.ServicePrincipal)
		if !ok {
			continue
		}
		role, ok := rbac.LookupRole(a.Role)
		if !ok {
			role, ok = p.customRole(a.Role)
		}
		if !ok {
			if a.Role == "" {
				p.failf(sec, i, "role", "required")
			} else {
				p.failf(sec, i, "role", "unknown role %q; want a built-in role (Owner, Reader, ...), a custom role in roleDefinitions, or a role definition id", a.Role)
			}
			continue
		}
		ra := &rbacAssignment{rbac.Assignment{
			ID: a.ID, PrincipalID: pid, PrincipalType: principalTypes[principalKinds[field]],
			RoleDefinitionID: role.ID, Scope: a.Scope, Description: a.Description,
		}}
		ra.Normalize()
		if err := ra.Validate(); err != nil {
			p.fail(sec, i, "", renamePath(err, map[string]string{"principalId": field, "principalType": field, "roleDefinitionId": "role"}))
			continue
		}
		items = append(items, &item{
			kind: rbac.Kind, section: sec, index: i, res: ra, key: assignmentKey(ra),
			name: fmt.Sprintf("%s for %s at %s", role.RoleName, p.display(pid), ra.Scope),
		})
	}
	p.matchAssignments(rbac.Kind, items)
}

// assignmentKey is what identifies an assignment without its id:
// principal, role and scope, and the window of a time-bound one. A
// manifest lists standing assignments only, so that one never claims (and
// so makes permanent, or prunes) an activation of the same role.
func assignmentKey(r directory.Resource) string {
	switch a := r.(type) {
	case *directory.RoleAssignment:
		return a.PrincipalID + "|" + a.RoleDefinitionID + "|" + a.DirectoryScopeID + windowKey(a.StartDateTime, a.EndDateTime, a.AssignmentType)
	case *rbacAssignment:
		role := a.RoleDefinitionID
		if d, ok := rbac.LookupRole(role); ok {
			role = d.Name
		}
		return a.PrincipalID + "|" + role + "|" + a.Scope + windowKey(a.StartDateTime, a.EndDateTime, a.AssignmentType)
	}
	return ""
}

// windowKey is the part of an assignment's key that sets a time-bound or
// activated assignment apart from a standing one: empty for the latter.
func windowKey(start, end *time.Time, assignmentType string) string {
	if start == nil && end == nil && assignmentType == "" {
		return ""
	}
	bound := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return "|" + bound(start) + "|" + bound(end) + "|" + assignmentType
}

// assignmentPrincipal is the principal id of a stored assignment.
func assignmentPrincipal(r directory.Resource) string {
	switch a := r.(type) {
	case *directory.RoleAssignment:
		return a.PrincipalID
	case *rbacAssignment:
		return a.PrincipalID
	}
	return ""
}

// matchAssignments matches assignments with stored ones: by id when the
// entry gives one that exists, else by (principal, role, scope).
func (p *planner) matchAssignments(kind string, items []*item) {
	first := map[string]*item{}
	kept := items[:0]
	for _, it := range items {
		if prev, dup := first[it.key]; dup {
			p.failf(it.section, it.index, "", "repeats %s: same principal, role and scope", p.m.describe(prev.section, prev.index))
			continue
		}
		first[it.key] = it
		kept = append(kept, it)
	}
	items = kept
	byKey := map[string][]*store.Object{}
	for i := range p.stored[kind] {
		o := &p.stored[kind][i]
		r, err := fromObject(*o)
		if err != nil {
			continue // unreadable: nothing can match it, and it is kept
		}
		k := assignmentKey(r)
		byKey[k] = append(byKey[k], o)
	}
	for _, it := range items {
		if o := p.byID[kind][it.res.ObjectID()]; o != nil {
			p.claim(it, o)
		}
	}
	for _, it := range items {
		if it.existing != nil {
			continue
		}
		for _, o := range byKey[it.key] {
			if !p.matched[kid{kind, o.ID}] {
				p.claim(it, o)
				break
			}
		}
		if it.existing == nil && it.res.ObjectID() == "" {
			it.res.SetObjectID(directory.NewID())
		}
	}
	p.items[kind] = items
}

// settleAssignments decides the fate of the stored assignments the
// manifest does not list, and makes sure that pruning leaves nothing the
// plan keeps pointing at a deleted principal.
func (p *planner) settleAssignments() error {
	for _, kind := range []string{directory.KindRoleAssignment, rbac.Kind} {
		for i := range p.stored[kind] {
			o := &p.stored[kind][i]
			k := kid{kind, o.ID}
			if p.matched[k] {
				continue
			}
			if p.opts.Prune && o.ManagedBy == ManagedBy {
				p.pruned[k] = o
				continue
			}
			r, err := fromObject(*o)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			if pid := assignmentPrincipal(r); p.isPruned(pid) {
				p.errs.add(&Error{Message: fmt.Sprintf("pruning would delete %s, which %s %s (not in the manifest) still grants a role to",
					p.display(pid), noun[kind], o.ID)})
			}
		}
	}
	for _, o := range p.stored[directory.KindGroup] { // in id order, for stable messages
		r, ok := p.leftovers[kid{directory.KindGroup, o.ID}]
		if !ok {
			continue
		}
		for _, m := range r.(*directory.Group).Members {
			if p.isPruned(m) {
				p.errs.add(&Error{Message: fmt.Sprintf("pruning would delete %s, still a member of group %q, which the manifest does not list",
					p.display(m), nameOf(r))})
			}
		}
	}
	return nil
}

// isPruned reports whether the plan deletes the principal with this id.
func (p *planner) isPruned(id string) bool {
	pr, ok := p.principals[id]
	return ok && p.pruned[kid{pr.kind, id}] != nil
}

// customRole finds a custom role by roleName or GUID: in the manifest
// first, then among the stored roles the plan keeps.
func (p *planner) customRole(ref string) (rbac.RoleDefinition, bool) {
	ref = strings.ToLower(ref)
	for _, it := range p.items[rbac.DefinitionKind] {
		d := it.res.(*roleDef)
		if strings.ToLower(d.RoleName) == ref || d.Name == ref {
			return d.RoleDefinition, true
		}
	}
	for _, o := range p.stored[rbac.DefinitionKind] {
		if p.pruned[kid{rbac.DefinitionKind, o.ID}] != nil || (o.ID != ref && o.Key != ref) {
			continue
		}
		var d rbac.RoleDefinition
		if json.Unmarshal(o.Body, &d) == nil {
			return d, true
		}
	}
	return rbac.RoleDefinition{}, false
}
