package directory

import (
	"cmp"
	_ "embed"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/verityhq/verity/internal/schedule"
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
	// The window and origin of a time-bound assignment (Privileged
	// Identity Management); the zero Schedule is a standing assignment.
	// Graph keeps these on unifiedRoleAssignmentScheduleInstance; Verity
	// keeps them on the assignment, and the snapshot's *At methods compare
	// them with the decision's time.
	schedule.Schedule
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
	a.Schedule.Normalize()
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
	return a.Schedule.Validate()
}

// heldRole is a role that reaches a principal through one assignment,
// with the assignment's window.
type heldRole struct {
	role string
	schedule.Window
}

// timedRoles is the directory roles of a principal that holds one or more
// through time-bound assignments, through time: sets[i] is in force from
// bounds[i-1] (inclusive) until bounds[i] (exclusive), sets[0] before the
// first bound and the last set from the last bound on. Bounds are the unix
// nanoseconds at which an assignment starts or ends. Precomputed, so that
// a decision finds a principal's roles at any time with one binary search
// and no allocation.
type timedRoles struct {
	bounds []int64
	sets   [][]string
}

// at is the roles in force at now (unix nanoseconds), sorted.
func (t *timedRoles) at(now int64) []string {
	i, found := slices.BinarySearch(t.bounds, now)
	if found {
		i++
	}
	return t.sets[i]
}

// buildTimedRoles sweeps the held roles' bounds in order, counting the
// assignments in force per role. An empty window (end not after start;
// Validate refuses them) never counts.
func buildTimedRoles(held []heldRole) *timedRoles {
	type event struct {
		at    int64
		role  string
		delta int
	}
	var events []event
	count := map[string]int{}
	for _, h := range held {
		if h.NotAfter <= h.NotBefore {
			continue
		}
		if h.NotBefore == math.MinInt64 {
			count[h.role]++
		} else {
			events = append(events, event{h.NotBefore, h.role, 1})
		}
		if h.NotAfter != math.MaxInt64 {
			events = append(events, event{h.NotAfter, h.role, -1})
		}
	}
	slices.SortFunc(events, func(a, b event) int { return cmp.Compare(a.at, b.at) })
	inForce := func() []string {
		var out []string
		for r, n := range count {
			if n > 0 {
				out = append(out, r)
			}
		}
		slices.Sort(out)
		return slices.Clip(out)
	}
	t := &timedRoles{sets: [][]string{inForce()}}
	for i := 0; i < len(events); {
		at := events[i].at
		for ; i < len(events) && events[i].at == at; i++ {
			count[events[i].role] += events[i].delta
		}
		t.bounds = append(t.bounds, at)
		t.sets = append(t.sets, inForce())
	}
	return t
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
