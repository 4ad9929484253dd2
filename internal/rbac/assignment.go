package rbac

import (
	"path"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

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
	// StartDateTime and EndDateTime bound when the assignment is in force:
	// from StartDateTime (inclusive) until EndDateTime (exclusive), RFC
	// 3339, stored in UTC; nil means no bound on that side. They are
	// Verity's extension, modelled on ARM's roleAssignmentScheduleInstances:
	// a role activated through Privileged Identity Management is an
	// assignment that ends on time. Check compares them with Request.Now,
	// so an assignment stops granting at its end without a rebuild.
	StartDateTime *time.Time `json:"startDateTime,omitempty"`
	EndDateTime   *time.Time `json:"endDateTime,omitempty"`
	// AssignmentType says how the assignment came to be, as ARM's schedule
	// instances do: "Assigned" by an administrator, or "Activated" by its
	// principal from an eligibility (an activation always ends). It does
	// not change what the assignment grants.
	AssignmentType string `json:"assignmentType,omitempty"`
	// LinkedEligibilityScheduleID names the eligibility an activated
	// assignment came from; informational.
	LinkedEligibilityScheduleID string `json:"linkedRoleEligibilityScheduleId,omitempty"`
}

// Assignment types.
const (
	AssignmentAssigned  = "Assigned"
	AssignmentActivated = "Activated"
)

// InForce reports whether now lies in the assignment's window: at or
// after StartDateTime and before EndDateTime. An assignment without a
// window is always in force.
func (a *Assignment) InForce(now time.Time) bool {
	return (a.StartDateTime == nil || !now.Before(*a.StartDateTime)) &&
		(a.EndDateTime == nil || now.Before(*a.EndDateTime))
}

// Permanent reports whether the assignment is in force at now and stays
// so: no end, and any start already reached.
func (a *Assignment) Permanent(now time.Time) bool {
	return a.EndDateTime == nil && a.InForce(now)
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
	a.StartDateTime = utc(a.StartDateTime)
	a.EndDateTime = utc(a.EndDateTime)
}

// utc is t in UTC, as a new value (the caller's is left alone).
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
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
	return a.validateSchedule()
}

// validateSchedule checks the window and the fields that describe how the
// assignment came to be.
func (a *Assignment) validateSchedule() error {
	for _, f := range [...]struct {
		path string
		t    *time.Time
	}{{"startDateTime", a.StartDateTime}, {"endDateTime", a.EndDateTime}} {
		switch {
		case f.t == nil:
		case f.t.IsZero():
			return strictjson.Errorf(f.path, "must be a date-time, not the zero time; leave it out for no bound")
		case f.t.Location() != time.UTC:
			return strictjson.Errorf(f.path, "must be in UTC (Normalize converts it)")
		}
	}
	if a.StartDateTime != nil && a.EndDateTime != nil && !a.EndDateTime.After(*a.StartDateTime) {
		return strictjson.Errorf("endDateTime", "must be after startDateTime (%s)", a.StartDateTime.UTC().Format(time.RFC3339Nano))
	}
	switch a.AssignmentType {
	case "", AssignmentAssigned:
	case AssignmentActivated:
		if a.EndDateTime == nil {
			return strictjson.Errorf("endDateTime", "required on an Activated assignment: an activation ends")
		}
	default:
		return strictjson.Errorf("assignmentType", "must be Assigned or Activated")
	}
	if len(a.LinkedEligibilityScheduleID) > 1024 || strings.ContainsFunc(a.LinkedEligibilityScheduleID, unicode.IsControl) {
		return strictjson.Errorf("linkedRoleEligibilityScheduleId", "must be at most 1024 characters, without control characters")
	}
	return nil
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
