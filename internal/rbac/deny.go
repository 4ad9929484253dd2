package rbac

import (
	"strings"

	"github.com/verityhq/verity/internal/strictjson"
)

// DenyKind is the store kind of deny assignments.
const DenyKind = "denyAssignment"

// EveryoneID with principal type SystemDefined in a deny assignment's
// principals stands for all principals.
const EveryoneID = "00000000-0000-0000-0000-000000000000"

// DenyAssignment blocks principals from actions at a scope even when a role
// assignment grants them, in the shape of Azure's denyAssignments
// (`az rest .../denyAssignments`, flat properties). It applies to the
// principals listed (or to everyone when one of them is the zero GUID of
// type SystemDefined) except the excludePrincipals, at Scope and, unless
// DoNotApplyToChildScopes, below it.
type DenyAssignment struct {
	ID                      string          `json:"id,omitempty"`
	Name                    string          `json:"name,omitempty"`
	DenyAssignmentName      string          `json:"denyAssignmentName"`
	Description             string          `json:"description,omitempty"`
	Permissions             []Permission    `json:"permissions"`
	Scope                   string          `json:"scope"`
	DoNotApplyToChildScopes bool            `json:"doNotApplyToChildScopes,omitempty"`
	Principals              []DenyPrincipal `json:"principals"`
	ExcludePrincipals       []DenyPrincipal `json:"excludePrincipals,omitempty"`
	IsSystemProtected       bool            `json:"isSystemProtected,omitempty"`
}

// DenyPrincipal names a principal of a deny assignment.
type DenyPrincipal struct {
	ID   string `json:"id"`
	Type string `json:"type,omitempty"` // User, Group, ServicePrincipal, SystemDefined
}

func (p DenyPrincipal) everyone() bool {
	return p.ID == EveryoneID && strings.EqualFold(p.Type, "SystemDefined")
}

// UnmarshalJSON accepts Azure's permission object as well as a list of
// them: a deny assignment has `permissions: [{actions, ...}]`, test vectors
// and hand-written files often write `permissions: {actions, ...}`.
func (p *permissionList) UnmarshalJSON(data []byte) error {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		var one Permission
		if err := strictjson.Unmarshal(data, &one); err != nil {
			return err
		}
		*p = permissionList{one}
		return nil
	}
	var many []Permission
	if err := strictjson.Unmarshal(data, &many); err != nil {
		return err
	}
	*p = many
	return nil
}

type permissionList []Permission

// ParseDenyAssignment reads one deny assignment; permissions may be one
// object or a list of them. Errors carry the JSON path.
func ParseDenyAssignment(data []byte) (DenyAssignment, error) {
	var raw struct {
		DenyAssignment
		Permissions permissionList `json:"permissions"`
	}
	if err := strictjson.Unmarshal(data, &raw); err != nil {
		return DenyAssignment{}, err
	}
	d := raw.DenyAssignment
	d.Permissions = raw.Permissions
	return d, nil
}

// Validate checks a deny assignment: at least one action or data action,
// well-formed actions and scope, at least one principal, GUID principal
// ids, "everyone" only among principals and then with at least one
// excluded principal (as Azure requires of user-assigned deny assignments).
func (d *DenyAssignment) Validate() error {
	if d.DenyAssignmentName == "" {
		return strictjson.Errorf("denyAssignmentName", "required")
	}
	if len(d.Permissions) == 0 {
		return strictjson.Errorf("permissions", "at least one permission block is required")
	}
	for i, p := range d.Permissions {
		if p.Condition != "" {
			return strictjson.Errorf(strictjson.Join(strictjson.Index("permissions", i), "condition"), "deny assignments take no condition")
		}
		if err := p.validate(strictjson.Index("permissions", i)); err != nil {
			return err
		}
	}
	if err := checkScope(d.Scope); err != nil {
		return strictjson.Errorf("scope", "%v", err)
	}
	if len(d.Principals) == 0 {
		return strictjson.Errorf("principals", "at least one principal is required")
	}
	everyone := false
	for i, p := range d.Principals {
		if !isGUID(p.ID) {
			return strictjson.Errorf(strictjson.Join(strictjson.Index("principals", i), "id"), "not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
		}
		everyone = everyone || p.everyone()
	}
	for i, p := range d.ExcludePrincipals {
		if !isGUID(p.ID) {
			return strictjson.Errorf(strictjson.Join(strictjson.Index("excludePrincipals", i), "id"), "not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
		}
		if p.everyone() {
			return strictjson.Errorf(strictjson.Index("excludePrincipals", i), "everyone (SystemDefined zero GUID) may appear only in principals")
		}
	}
	if everyone && len(d.ExcludePrincipals) == 0 {
		return strictjson.Errorf("excludePrincipals", "a deny assignment for everyone must exclude at least one principal")
	}
	return nil
}
