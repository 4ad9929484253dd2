package rbac

import (
	"path"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/strictjson"
)

// Kind is the store kind of role assignments.
const Kind = "roleAssignment"

// Assignment grants a role to a principal at a scope, in the flat shape of
// `az role assignment list`.
type Assignment struct {
	ID               string `json:"id,omitempty"`
	PrincipalID      string `json:"principalId"`
	PrincipalType    string `json:"principalType,omitempty"` // User, Group, ServicePrincipal
	RoleDefinitionID string `json:"roleDefinitionId"`
	// RoleDefinitionName is filled on output for readers; ignored on input.
	RoleDefinitionName string `json:"roleDefinitionName,omitempty"`
	Scope              string `json:"scope"`
	Description        string `json:"description,omitempty"`
	// Condition is an ABAC condition that must hold for the assignment to
	// grant (conditionVersion "2.0"); see Options.CompileCondition.
	Condition        string `json:"condition,omitempty"`
	ConditionVersion string `json:"conditionVersion,omitempty"`
	CreatedOn        string `json:"createdOn,omitempty"`
	// The window and origin of a time-bound assignment: Verity's
	// extension, modelled on ARM's roleAssignmentScheduleInstances (a role
	// activated through Privileged Identity Management ends on time). Check
	// compares the window with Request.Now; the zero Schedule is a standing
	// assignment.
	schedule.Schedule
}

// Normalize fills defaults and canonical forms.
func (a *Assignment) Normalize() {
	if a.Scope == "" {
		a.Scope = "/"
	}
	if r, ok := LookupRole(a.RoleDefinitionID); ok {
		a.RoleDefinitionID = r.ID
		a.RoleDefinitionName = r.RoleName
	}
	a.ID = strings.ToLower(a.ID)
	a.PrincipalID = strings.ToLower(a.PrincipalID)
	a.Schedule.Normalize()
}

// Validate reports the first invalid field with its JSON path.
func (a *Assignment) Validate() error {
	if a.ID != "" && !isGUID(a.ID) {
		return strictjson.Errorf("id", "not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
	}
	if !isGUID(a.PrincipalID) {
		return strictjson.Errorf("principalId", "not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")
	}
	switch a.PrincipalType {
	case "", "User", "Group", "ServicePrincipal":
	default:
		return strictjson.Errorf("principalType", "must be User, Group or ServicePrincipal")
	}
	if _, ok := LookupRole(a.RoleDefinitionID); !ok && !isGUID(lastSegment(a.RoleDefinitionID)) {
		// A custom role is named by its GUID or id; whether it exists is
		// the caller's check, against the stored definitions.
		return strictjson.Errorf("roleDefinitionId", "unknown role definition %q (want a built-in role name, or the GUID or id of a role)", a.RoleDefinitionID)
	}
	if !strings.HasPrefix(a.Scope, "/") || path.Clean(a.Scope) != a.Scope || strings.ContainsAny(a.Scope, "\x00\\") {
		return strictjson.Errorf("scope", "must be a clean absolute path such as / or /apps/payroll")
	}
	if a.Condition == "" && a.ConditionVersion != "" {
		return strictjson.Errorf("conditionVersion", "set without a condition")
	}
	switch a.ConditionVersion {
	case "", "1.0", "2.0":
	default:
		return strictjson.Errorf("conditionVersion", "must be 1.0 or 2.0")
	}
	if len(a.Description) > 1024 {
		return strictjson.Errorf("description", "must be at most 1024 characters")
	}
	return a.Schedule.Validate()
}

// ObjectID is the assignment's id.
func (a *Assignment) ObjectID() string { return a.ID }

// SetObjectID sets the id on create.
func (a *Assignment) SetObjectID(id string) { a.ID = id }

// SetCreatedDateTime records when the assignment was made.
func (a *Assignment) SetCreatedDateTime(t time.Time) { a.CreatedOn = t.UTC().Format(time.RFC3339) }

// isGUID accepts only the canonical 36-character form, which is how ids
// are stored and addressed.
func isGUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// RoleGUID is the GUID of the role an assignment names (its definition id
// without the ARM path).
func (a *Assignment) RoleGUID() string { return strings.ToLower(lastSegment(a.RoleDefinitionID)) }
