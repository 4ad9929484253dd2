package cedarbench

import (
	"strings"

	"github.com/verityhq/verity/internal/rbac"
)

// builtinRoles returns Azure's built-in role definitions from Verity's
// embedded copy (package rbac), leaving out Verity's own roles over the
// Verity.* namespace, which this comparison does not exercise.
func builtinRoles() []Role {
	var out []Role
	for _, rd := range rbac.BuiltinRoles() {
		if verityOnly(rd) {
			continue
		}
		r := Role{Name: strings.ToLower(rd.Name), RoleName: rd.RoleName}
		for _, p := range rd.Permissions {
			r.Permissions = append(r.Permissions, Permission{
				Actions: p.Actions, NotActions: p.NotActions,
				DataActions: p.DataActions, NotDataActions: p.NotDataActions,
				Condition: p.Condition,
			})
		}
		out = append(out, r)
	}
	return out
}

func verityOnly(rd rbac.RoleDefinition) bool {
	n := 0
	for _, p := range rd.Permissions {
		for _, l := range [][]string{p.Actions, p.NotActions, p.DataActions, p.NotDataActions} {
			for _, a := range l {
				if !strings.HasPrefix(strings.ToLower(a), "verity.") {
					return false
				}
				n++
			}
		}
	}
	return n > 0
}
