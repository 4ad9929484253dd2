package rbac

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/strictjson"
)

// listItems splits a document holding one object, a JSON array, or an ARM
// or Graph list {"value": [...]} into its objects, with the path prefix
// of each for errors.
func listItems(data []byte) ([]json.RawMessage, []string, error) {
	trimmed := strings.TrimSpace(string(data))
	var items []json.RawMessage
	prefix := ""
	switch {
	case strings.HasPrefix(trimmed, "["):
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, nil, strictjson.Errorf("", "malformed JSON array: %v", err)
		}
	case strings.HasPrefix(trimmed, "{"):
		var top map[string]json.RawMessage
		if err := json.Unmarshal(data, &top); err != nil {
			return nil, nil, strictjson.Errorf("", "malformed JSON: %v", err)
		}
		if v, ok := top["value"]; ok {
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, nil, strictjson.Errorf("value", "must be an array")
			}
			prefix = "value"
		} else {
			items = []json.RawMessage{data}
		}
	default:
		return nil, nil, strictjson.Errorf("", "not a JSON object or array")
	}
	paths := make([]string, len(items))
	for i := range items {
		if len(items) > 1 || prefix != "" || strings.HasPrefix(trimmed, "[") {
			paths[i] = strictjson.Index(prefix, i)
		}
	}
	return items, paths, nil
}

// azAssignment is a role assignment as `az role assignment list` prints it
// (flat) or as ARM returns it (the same fields under "properties").
type azAssignment struct {
	ID                 string          `json:"id"`
	Name               string          `json:"name"`
	PrincipalID        string          `json:"principalId"`
	PrincipalType      string          `json:"principalType"`
	RoleDefinitionID   string          `json:"roleDefinitionId"`
	RoleDefinitionName string          `json:"roleDefinitionName"`
	Scope              string          `json:"scope"`
	Description        string          `json:"description"`
	Condition          string          `json:"condition"`
	ConditionVersion   string          `json:"conditionVersion"`
	CreatedOn          string          `json:"createdOn"`
	Properties         json.RawMessage `json:"properties"`
	// A roleAssignmentScheduleInstance (an active assignment of Privileged
	// Identity Management) also has its window and type.
	StartDateTime                   *time.Time `json:"startDateTime"`
	EndDateTime                     *time.Time `json:"endDateTime"`
	AssignmentType                  string     `json:"assignmentType"`
	LinkedRoleEligibilityScheduleID string     `json:"linkedRoleEligibilityScheduleId"`
}

// ParseAssignments reads role assignments as Azure exports them: the
// output of `az role assignment list` (extra fields such as principalName
// and canDelegate are ignored), ARM objects with "properties" (role
// assignments, or the roleAssignmentScheduleInstances of Privileged
// Identity Management, whose startDateTime, endDateTime, assignmentType
// and linkedRoleEligibilityScheduleId are kept), a list {"value": [...]},
// or Verity's own. The assignment id is the GUID at the
// end of an ARM id. Roles are resolved when the engine compiles.
func ParseAssignments(data []byte) ([]Assignment, error) {
	items, paths, err := listItems(data)
	if err != nil {
		return nil, err
	}
	out := make([]Assignment, 0, len(items))
	for i, item := range items {
		var az azAssignment
		if err := json.Unmarshal(item, &az); err != nil {
			return nil, strictjson.Errorf(paths[i], "not a role assignment object: %v", err)
		}
		if len(az.Properties) > 0 && string(az.Properties) != "null" {
			id, name := az.ID, az.Name
			if err := json.Unmarshal(az.Properties, &az); err != nil {
				return nil, strictjson.Errorf(strictjson.Join(paths[i], "properties"), "not a role assignment: %v", err)
			}
			az.ID, az.Name = id, name
		}
		a := Assignment{
			ID: lastSegment(az.ID), PrincipalID: az.PrincipalID, PrincipalType: az.PrincipalType,
			RoleDefinitionID: az.RoleDefinitionID, RoleDefinitionName: az.RoleDefinitionName, Scope: az.Scope,
			Description: az.Description, Condition: az.Condition, ConditionVersion: az.ConditionVersion, CreatedOn: az.CreatedOn,
			Schedule: schedule.Schedule{StartDateTime: az.StartDateTime, EndDateTime: az.EndDateTime, AssignmentType: az.AssignmentType,
				LinkedEligibilityScheduleID: az.LinkedRoleEligibilityScheduleID},
		}
		if !isGUID(a.ID) && isGUID(az.Name) {
			a.ID = az.Name
		}
		if a.RoleDefinitionID == "" {
			a.RoleDefinitionID = az.RoleDefinitionName
		}
		switch {
		case a.PrincipalID == "":
			return nil, strictjson.Errorf(strictjson.Join(paths[i], "principalId"), "required")
		case a.RoleDefinitionID == "":
			return nil, strictjson.Errorf(strictjson.Join(paths[i], "roleDefinitionId"), "required")
		case a.Scope == "":
			return nil, strictjson.Errorf(strictjson.Join(paths[i], "scope"), "required")
		}
		a.Normalize()
		out = append(out, a)
	}
	return out, nil
}

// ParseDenyAssignments reads deny assignments: one, an array, or a list
// {"value": [...]}, in Azure's shape.
func ParseDenyAssignments(data []byte) ([]DenyAssignment, error) {
	items, paths, err := listItems(data)
	if err != nil {
		return nil, err
	}
	out := make([]DenyAssignment, 0, len(items))
	for i, item := range items {
		d, err := ParseDenyAssignment(item)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", paths[i], err)
		}
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", paths[i], err)
		}
		out = append(out, d)
	}
	return out, nil
}

func lastSegment(id string) string {
	if i := strings.LastIndex(id, "/"); i >= 0 {
		return id[i+1:]
	}
	return id
}
