package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
)

// TestTimeBoundRoleAssignments: role assignments of both kinds take a
// window, validated with its path; a Verity assignment authorises, and
// shows in effective access, only while it is in force; the audit record
// of its creation says when it ends.
func TestTimeBoundRoleAssignments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, carol := e.createUser("alice@contoso.com"), e.createUser("carol@contoso.com")
	now := time.Now().UTC().Truncate(time.Second)
	stamp := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	plus2 := func(d time.Duration) string { return now.Add(d).In(time.FixedZone("", 2*3600)).Format(time.RFC3339) }

	ra := e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "roleDefinitionId": "Reader", "scope": "/",
		"startDateTime": plus2(-time.Hour), "endDateTime": stamp(time.Hour), "assignmentType": "Activated",
		"linkedRoleEligibilityScheduleId": "e1"}).want(http.StatusCreated).json()
	if ra["startDateTime"] != stamp(-time.Hour) || ra["endDateTime"] != stamp(time.Hour) || ra["assignmentType"] != "Activated" ||
		ra["linkedRoleEligibilityScheduleId"] != "e1" {
		t.Errorf("created %v; want the window in UTC and the type kept", ra)
	}
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": carol, "roleDefinitionId": "Reader", "scope": "/",
		"endDateTime": stamp(-time.Minute)}).want(http.StatusCreated)

	// Bad windows name their field.
	for _, body := range []map[string]any{
		{"startDateTime": stamp(time.Hour), "endDateTime": stamp(time.Hour)},
		{"startDateTime": stamp(time.Hour), "endDateTime": stamp(0)},
		{"endDateTime": "tomorrow"},
		{"assignmentType": "Activated"},
	} {
		body["principalId"], body["roleDefinitionId"] = alice, "Reader"
		e.admin("POST", "/api/v1/authorization/roleAssignments", body).problem(http.StatusBadRequest, "InvalidRequest", "endDateTime")
		body["principalId"], body["roleDefinitionId"] = alice, directory.GlobalAdministratorRoleID
		e.admin("POST", "/api/v1/roleManagement/directory/roleAssignments", body).problem(http.StatusBadRequest, "InvalidRequest", "endDateTime")
	}
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "roleDefinitionId": "Reader",
		"assignmentType": "Eligible"}).problem(http.StatusBadRequest, "InvalidRequest", "assignmentType")
	dra := e.admin("POST", "/api/v1/roleManagement/directory/roleAssignments", map[string]any{"principalId": alice,
		"roleDefinitionId": directory.GlobalAdministratorRoleID, "startDateTime": stamp(-time.Hour), "endDateTime": stamp(time.Hour),
		"assignmentType": "Activated"}).want(http.StatusCreated).json()
	if dra["endDateTime"] != stamp(time.Hour) || dra["assignmentType"] != "Activated" {
		t.Errorf("directory role assignment %v", dra)
	}

	// Effective access lists only what is in force, with its end.
	var perms struct {
		Value []struct {
			RoleAssignmentID, RoleDefinitionName string
			EndDateTime                          *time.Time
		}
	}
	e.admin("GET", "/api/v1/authorization/permissions?principalId="+alice+"&scope=/", nil).want(http.StatusOK).decode(&perms)
	if len(perms.Value) != 1 || perms.Value[0].RoleAssignmentID != ra["id"] || perms.Value[0].EndDateTime == nil ||
		!perms.Value[0].EndDateTime.Equal(now.Add(time.Hour)) {
		t.Errorf("alice's permissions: %+v", perms.Value)
	}
	e.admin("GET", "/api/v1/authorization/permissions?principalId="+carol+"&scope=/", nil).want(http.StatusOK).decode(&perms)
	if len(perms.Value) != 0 {
		t.Errorf("carol's ended assignment is listed: %+v", perms.Value)
	}
	var who struct{ Principals []string }
	e.admin("GET", "/api/v1/authorization/whoCan?action=Verity.Directory/users/read&scope=/directory/users", nil).want(http.StatusOK).decode(&who)
	if !slices.Contains(who.Principals, alice) || slices.Contains(who.Principals, carol) {
		t.Errorf("who can read users: %v", who.Principals)
	}

	// The assignment in force authorises; the ended one does not.
	token := func(id, upn string) string {
		e.admin("POST", "/api/v1/users/"+id+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
		tok, _ := e.login(upn, "a long enough passphrase")
		return tok
	}
	e.call(token(alice, "alice@contoso.com"), "GET", "/api/v1/users", nil).want(http.StatusOK)
	e.call(token(carol, "carol@contoso.com"), "GET", "/api/v1/users", nil).problem(http.StatusForbidden, "Forbidden", "")

	// The audit record of the grant says when it ends.
	found := false
	for _, ev := range e.audit() {
		var d map[string]any
		if ev.Action != "roleAssignments.create" || json.Unmarshal(ev.Details, &d) != nil || d["id"] != ra["id"] {
			continue
		}
		found = d["endDateTime"] == stamp(time.Hour) && d["assignmentType"] == "Activated"
	}
	if !found {
		t.Error("the audit record of the time-bound grant lacks its end")
	}
}
