package directory

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/strictjson"
)

// GlobalAdministratorRoleID is the template id of Entra's Global
// Administrator role.
const GlobalAdministratorRoleID = "62e90394-69f5-4237-9190-012177145e10"

// RoleDefinition is a built-in Entra directory role, in the shape of
// Graph's unifiedRoleDefinition. Verity knows the names and template ids
// (the id is the template id, as for Entra's built-in roles), not the
// permissions.
type RoleDefinition struct {
	ID           string `json:"id"`
	TemplateID   string `json:"templateId"`
	DisplayName  string `json:"displayName"`
	IsBuiltIn    bool   `json:"isBuiltIn"`
	IsEnabled    bool   `json:"isEnabled"`
	IsPrivileged bool   `json:"isPrivileged"`
}

// builtinRolesJSON is transcribed from Microsoft's permissions reference;
// see roles/README.md.
//
//go:embed roles/entra-builtin-directory-roles.json
var builtinRolesJSON []byte

type roleTable struct {
	list []RoleDefinition          // sorted by displayName
	byID map[string]RoleDefinition // lower-case template id
}

// builtinRoles parses the embedded table once; the result is never
// modified.
var builtinRoles = sync.OnceValue(func() roleTable {
	t, err := parseRoles(builtinRolesJSON)
	if err != nil {
		panic(err) // the embedded file is part of the binary; tests check it
	}
	return t
})

func parseRoles(data []byte) (roleTable, error) {
	var doc struct {
		Source string `json:"_source"`
		Roles  []struct {
			DisplayName     string `json:"displayName"`
			TemplateID      string `json:"templateId"`
			PrivilegedLabel bool   `json:"privilegedLabel"`
		} `json:"roles"`
	}
	if err := strictjson.Unmarshal(data, &doc); err != nil {
		return roleTable{}, fmt.Errorf("parse built-in directory roles: %w", err)
	}
	t := roleTable{byID: make(map[string]RoleDefinition, len(doc.Roles))}
	for i, r := range doc.Roles {
		if !IsGUID(r.TemplateID) || r.DisplayName == "" {
			return roleTable{}, fmt.Errorf("parse built-in directory roles: roles[%d]: bad template id or name", i)
		}
		id := strings.ToLower(r.TemplateID)
		if _, dup := t.byID[id]; dup {
			return roleTable{}, fmt.Errorf("parse built-in directory roles: roles[%d]: template id %s repeated", i, id)
		}
		d := RoleDefinition{ID: id, TemplateID: id, DisplayName: r.DisplayName, IsBuiltIn: true, IsEnabled: true, IsPrivileged: r.PrivilegedLabel}
		t.byID[id] = d
		t.list = append(t.list, d)
	}
	slices.SortFunc(t.list, func(a, b RoleDefinition) int { return strings.Compare(a.DisplayName, b.DisplayName) })
	return t, nil
}

// BuiltinRoles lists Entra's built-in directory roles, sorted by display
// name. The slice is the caller's.
func BuiltinRoles() []RoleDefinition { return slices.Clone(builtinRoles().list) }

// RoleByID finds a built-in directory role by its template id (any case).
func RoleByID(id string) (RoleDefinition, bool) {
	d, ok := builtinRoles().byID[strings.ToLower(id)]
	return d, ok
}

// RoleAssignment grants a built-in directory role to a principal (user,
// group with isAssignableToRole, or service principal): Graph's
// unifiedRoleAssignment under roleManagement/directory. Its id is opaque,
// as in Graph (Verity assigns GUIDs; imports keep Entra's ids). It has no
// natural key.
type RoleAssignment struct {
	ID               string `json:"id,omitempty"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`           // a built-in role template id
	DirectoryScopeID string `json:"directoryScopeId,omitempty"` // default "/", the whole tenant
	// AppScopeID and Condition exist in Graph but Verity does not evaluate
	// them; Validate rejects them rather than grant more than was meant.
	AppScopeID string `json:"appScopeId,omitempty"`
	Condition  string `json:"condition,omitempty"`
}

// ObjectID implements Resource.
func (a *RoleAssignment) ObjectID() string { return a.ID }

// SetObjectID implements Resource.
func (a *RoleAssignment) SetObjectID(id string) { a.ID = id }

// SetCreatedDateTime implements Resource; Graph role assignments have no
// createdDateTime, so it does nothing.
func (a *RoleAssignment) SetCreatedDateTime(time.Time) {}

// Normalize implements Resource: directoryScopeId defaults to "/"; GUIDs
// are lower-cased.
func (a *RoleAssignment) Normalize() {
	a.ID = lowerGUID(a.ID)
	a.PrincipalID = lowerGUID(a.PrincipalID)
	a.RoleDefinitionID = lowerGUID(a.RoleDefinitionID)
	if a.DirectoryScopeID == "" {
		a.DirectoryScopeID = "/"
	}
	if rest, ok := strings.CutPrefix(a.DirectoryScopeID, "/administrativeUnits/"); ok {
		a.DirectoryScopeID = "/administrativeUnits/" + lowerGUID(rest)
	} else {
		a.DirectoryScopeID = "/" + lowerGUID(strings.TrimPrefix(a.DirectoryScopeID, "/"))
	}
}

// Validate implements Resource.
func (a *RoleAssignment) Validate() error {
	err := firstError(
		checkAssignmentID("id", a.ID),
		checkGUID("principalId", a.PrincipalID),
		checkGUID("roleDefinitionId", a.RoleDefinitionID),
		checkDirectoryScope("directoryScopeId", a.DirectoryScopeID),
	)
	if err != nil {
		return err
	}
	if _, ok := RoleByID(a.RoleDefinitionID); !ok {
		return strictjson.Errorf("roleDefinitionId", "%s is not the template id of a built-in directory role", a.RoleDefinitionID)
	}
	if a.AppScopeID != "" {
		return strictjson.Errorf("appScopeId", "app-specific scopes are not supported")
	}
	if a.Condition != "" {
		return strictjson.Errorf("condition", "conditions on directory role assignments are not supported")
	}
	return nil
}

// checkAssignmentID accepts Graph's role assignment ids, which are opaque
// strings rather than GUIDs ("lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1"):
// up to 128 letters, digits, '-' and '_'. Verity assigns GUIDs.
func checkAssignmentID(path, id string) error {
	if len(id) > 128 {
		return strictjson.Errorf(path, "must be at most 128 characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '-' && c != '_' {
			return strictjson.Errorf(path, "must hold only letters, digits, '-' and '_'")
		}
	}
	return nil
}

// checkDirectoryScope accepts "/" (the tenant), "/administrativeUnits/{id}"
// and "/{id}" (one object, such as an application), as Graph does.
func checkDirectoryScope(path, s string) error {
	if s == "/" {
		return nil
	}
	if rest, ok := strings.CutPrefix(s, "/administrativeUnits/"); ok && IsGUID(rest) {
		return nil
	}
	if rest, ok := strings.CutPrefix(s, "/"); ok && IsGUID(rest) {
		return nil
	}
	return strictjson.Errorf(path, "must be \"/\", \"/administrativeUnits/{id}\" or \"/{objectId}\", not %q", s)
}
