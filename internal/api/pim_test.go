package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/store"
)

// TestPIMOverAPI: an administrator sets a role's settings (approval by
// bob) and makes alice eligible; alice asks to activate — refused without
// MFA under the default settings, waiting for approval under the new
// ones; she cannot approve it herself; bob sees it among his and approves
// with a justification; alice then holds the role for the window, listed
// with its end; every step is in the audit log.
func TestPIMOverAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, bob := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	for _, u := range []string{"alice@contoso.com", "bob@contoso.com"} {
		e.admin("POST", "/api/v1/users/"+u+"/password", map[string]any{"password": "correct horse battery staple 7"}).want(http.StatusNoContent)
	}
	aliceTok, _ := e.login("alice@contoso.com", "correct horse battery staple 7")
	bobTok, _ := e.login("bob@contoso.com", "correct horse battery staple 7")
	const scope = "/apps/payroll"
	e.admin("POST", "/api/v1/pim/requests", map[string]any{"requestType": "AdminAssign", "principalId": alice, "roleDefinitionId": "Contributor",
		"scope": scope, "scheduleInfo": map[string]any{"expiration": map[string]any{"type": "AfterDuration", "duration": "P30D"}}}).want(http.StatusCreated)
	var els struct {
		Value []struct{ ID, PrincipalID string }
	}
	e.call(aliceTok, "GET", "/api/v1/pim/eligibilities", nil).want(http.StatusOK).decode(&els)
	if len(els.Value) != 1 || els.Value[0].PrincipalID != alice {
		t.Fatalf("alice's eligibilities %+v", els.Value)
	}
	e.call(bobTok, "GET", "/api/v1/pim/eligibilities", nil).want(http.StatusOK).decode(&els)
	if len(els.Value) != 0 {
		t.Fatalf("bob sees alice's eligibility: %+v", els.Value)
	}
	e.call(aliceTok, "POST", "/api/v1/pim/requests", map[string]any{"requestType": "AdminAssign", "principalId": alice, "roleDefinitionId": "Owner",
		"scope": "/"}).problem(http.StatusForbidden, "AuthorizationFailed", "")
	activate := map[string]any{"requestType": "SelfActivate", "roleDefinitionId": "Contributor", "scope": scope, "justification": "month end close",
		"scheduleInfo": map[string]any{"expiration": map[string]any{"type": "AfterDuration", "duration": "PT2H"}}}
	// The default settings ask for MFA: a password-only sign-in is refused.
	e.call(aliceTok, "POST", "/api/v1/pim/requests", activate).problem(http.StatusUnauthorized, "MfaRequired", "")
	e.call(aliceTok, "PUT", "/api/v1/pim/policies", map[string]any{"roleDefinitionId": "Contributor", "scope": scope,
		"policy": map[string]any{"activationMaxDuration": "PT4H", "requireMfa": false, "requireJustification": true, "requireApproval": true,
			"approvers": []string{bob}, "approvalTimeout": "P1D", "eligibilityMaxDuration": "P365D", "assignmentMaxDuration": "P180D"}}).
		problem(http.StatusForbidden, "Forbidden", "")
	e.admin("PUT", "/api/v1/pim/policies", map[string]any{"roleDefinitionId": "Contributor", "scope": scope,
		"policy": map[string]any{"activationMaxDuration": "PT4H", "requireMfa": false, "requireJustification": true, "requireApproval": true,
			"approvers": []string{bob}, "approvalTimeout": "P1D", "approverJustificationRequired": true,
			"eligibilityMaxDuration": "P365D", "assignmentMaxDuration": "P180D"}}).want(http.StatusOK)
	e.admin("PUT", "/api/v1/pim/policies", map[string]any{"roleDefinitionId": "Contributor", "scope": scope,
		"policy": map[string]any{"activationMaxDuration": "P2D"}}).problem(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "policy")
	var req struct {
		ID, Status string
		Approvals  []struct{ ApproverID string }
	}
	e.call(aliceTok, "POST", "/api/v1/pim/requests", activate).want(http.StatusCreated).decode(&req)
	if req.Status != "PendingApproval" {
		t.Fatalf("request %+v", req)
	}
	e.call(aliceTok, "POST", "/api/v1/pim/requests/"+req.ID+"/approve", map[string]any{"justification": "me"}).problem(http.StatusForbidden, "SelfApprovalNotAllowed", "")
	var mine struct{ Value []struct{ ID string } }
	e.call(bobTok, "GET", "/api/v1/pim/requests?approver=me", nil).want(http.StatusOK).decode(&mine)
	if len(mine.Value) != 1 || mine.Value[0].ID != req.ID {
		t.Fatalf("bob's requests to approve %+v", mine.Value)
	}
	e.call(bobTok, "POST", "/api/v1/pim/requests/"+req.ID+"/approve", nil).problem(http.StatusBadRequest, "JustificationRule", "")
	e.call(bobTok, "POST", "/api/v1/pim/requests/"+req.ID+"/approve", map[string]any{"justification": "ticket checked"}).want(http.StatusOK).decode(&req)
	if req.Status != "Provisioned" || len(req.Approvals) != 1 || req.Approvals[0].ApproverID != bob {
		t.Fatalf("approved %+v", req)
	}
	var perms struct {
		Value []struct {
			RoleDefinitionName string
			EndDateTime        *time.Time
		}
	}
	e.admin("GET", "/api/v1/authorization/permissions?principalId="+alice+"&scope="+scope, nil).want(http.StatusOK).decode(&perms)
	if len(perms.Value) != 1 || perms.Value[0].RoleDefinitionName != "Contributor" || perms.Value[0].EndDateTime == nil ||
		time.Until(*perms.Value[0].EndDateTime) > 2*time.Hour || time.Until(*perms.Value[0].EndDateTime) < time.Hour {
		t.Fatalf("alice's permissions %+v", perms.Value)
	}
	e.call(bobTok, "GET", "/api/v1/pim/requests/"+req.ID, nil).want(http.StatusOK)
	e.call(e.token, "GET", "/api/v1/pim/requests/nope", nil).problem(http.StatusNotFound, "NotFound", "")
	var findings struct {
		Value []struct{ Kind, PrincipalID string }
	}
	e.admin("GET", "/api/v1/pim/findings", nil).want(http.StatusOK).decode(&findings)
	standing := false
	for _, f := range findings.Value {
		standing = standing || f.Kind == "standingPrivilegedAssignment" && f.PrincipalID == e.adminID
		if f.PrincipalID == alice {
			t.Errorf("alice's activation is a finding: %+v", f)
		}
	}
	if !standing {
		t.Errorf("the bootstrap Owner is not a standing assignment: %+v", findings.Value)
	}
	e.call(aliceTok, "GET", "/api/v1/pim/findings", nil).problem(http.StatusForbidden, "Forbidden", "")
	actions := map[string]bool{}
	for _, ev := range e.audit() {
		actions[ev.Action] = true
	}
	for _, a := range []string{"pim.adminAssign", "pim.setPolicy", "pim.selfActivate", "pim.approve"} {
		if !actions[a] {
			t.Errorf("no %s in the audit log", a)
		}
	}
	if strings.Contains(e.logs.String(), "correct horse") {
		t.Error("a password in the log")
	}
}

// TestPIMExtendAssignmentOverAPI: an administrator's time-bound active
// assignment (target assignment) is extended on its principal's request
// once an administrator approves, and by an administrator directly; the
// permissions listing shows each new end. Refusals name the field at
// fault: target for a renewal (an ended assignment is removed, so it is
// assigned again) or for an assignment there is not, scheduleInfo.expiration
// for an end past the settings' maximum, justification where the settings
// ask for one.
func TestPIMExtendAssignmentOverAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	bob, carol := e.createUser("bob@contoso.com"), e.createUser("carol@contoso.com")
	e.admin("POST", "/api/v1/users/bob@contoso.com/password", map[string]any{"password": "correct horse battery staple 7"}).want(http.StatusNoContent)
	bobTok, _ := e.login("bob@contoso.com", "correct horse battery staple 7")
	const scope = "/apps/payroll"
	request := func(typ, principal, duration string) map[string]any {
		r := map[string]any{"requestType": typ, "target": "assignment", "roleDefinitionId": "Contributor", "scope": scope, "justification": "payroll migration"}
		if principal != "" {
			r["principalId"] = principal
		}
		if duration != "" {
			r["scheduleInfo"] = map[string]any{"expiration": map[string]any{"type": "AfterDuration", "duration": duration}}
		}
		return r
	}
	type pimRequest struct {
		ID, Status, Target, TargetScheduleID string
		ScheduleInfo                         struct {
			Expiration struct{ EndDateTime *time.Time }
		}
	}
	var made pimRequest
	e.admin("POST", "/api/v1/pim/requests", request("AdminAssign", bob, "P10D")).want(http.StatusCreated).decode(&made)
	if made.Target != "assignment" || made.TargetScheduleID == "" || made.ScheduleInfo.Expiration.EndDateTime == nil {
		t.Fatalf("assignment %+v", made)
	}
	end := *made.ScheduleInfo.Expiration.EndDateTime
	permEnd := func() time.Time {
		t.Helper()
		e.caughtUp()
		var perms struct {
			Value []struct {
				RoleDefinitionName string
				EndDateTime        *time.Time
			}
		}
		e.admin("GET", "/api/v1/authorization/permissions?principalId="+bob+"&scope="+scope, nil).want(http.StatusOK).decode(&perms)
		if len(perms.Value) != 1 || perms.Value[0].RoleDefinitionName != "Contributor" || perms.Value[0].EndDateTime == nil {
			t.Fatalf("bob's permissions %+v", perms.Value)
		}
		return *perms.Value[0].EndDateTime
	}
	if got := permEnd(); !got.Equal(end) {
		t.Fatalf("permissions end at %v; the assignment at %v", got, end)
	}

	e.call(bobTok, "POST", "/api/v1/pim/requests", request("SelfRenew", "", "P10D")).problem(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "target")
	e.admin("POST", "/api/v1/pim/requests", request("AdminRenew", bob, "P10D")).problem(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "target")
	e.call(bobTok, "POST", "/api/v1/pim/requests", request("SelfExtend", "", "P200D")).
		problem(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "scheduleInfo.expiration")
	e.admin("POST", "/api/v1/pim/requests", request("AdminExtend", carol, "P5D")).problem(http.StatusBadRequest, "RoleAssignmentDoesNotExist", "target")
	e.call(bobTok, "POST", "/api/v1/pim/requests", request("AdminExtend", bob, "P5D")).problem(http.StatusForbidden, "AuthorizationFailed", "")

	var ask pimRequest
	e.call(bobTok, "POST", "/api/v1/pim/requests", request("SelfExtend", "", "P5D")).want(http.StatusCreated).decode(&ask)
	if ask.Status != "PendingApproval" || ask.Target != "assignment" || ask.TargetScheduleID != made.TargetScheduleID {
		t.Fatalf("SelfExtend %+v", ask)
	}
	if got := permEnd(); !got.Equal(end) {
		t.Fatalf("the end moved before the approval: %v", got)
	}
	e.call(bobTok, "POST", "/api/v1/pim/requests/"+ask.ID+"/approve", map[string]any{"justification": "mine"}).problem(http.StatusForbidden, "SelfApprovalNotAllowed", "")
	var approved pimRequest
	e.admin("POST", "/api/v1/pim/requests/"+ask.ID+"/approve", map[string]any{"justification": "migration runs late"}).want(http.StatusOK).decode(&approved)
	if approved.Status != "Provisioned" || approved.ScheduleInfo.Expiration.EndDateTime == nil || !approved.ScheduleInfo.Expiration.EndDateTime.Equal(end.Add(5*24*time.Hour)) {
		t.Fatalf("approved %+v", approved)
	}
	if got := permEnd(); !got.Equal(end.Add(5 * 24 * time.Hour)) {
		t.Fatalf("permissions end at %v after the approval", got)
	}

	noWhy := request("AdminExtend", bob, "P5D")
	delete(noWhy, "justification")
	e.admin("POST", "/api/v1/pim/requests", noWhy).problem(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "justification")
	var extended pimRequest
	e.admin("POST", "/api/v1/pim/requests", request("AdminExtend", bob, "P5D")).want(http.StatusCreated).decode(&extended)
	if extended.Status != "Provisioned" || extended.TargetScheduleID != made.TargetScheduleID ||
		!extended.ScheduleInfo.Expiration.EndDateTime.Equal(end.Add(10*24*time.Hour)) {
		t.Fatalf("AdminExtend %+v", extended)
	}
	if got := permEnd(); !got.Equal(end.Add(10 * 24 * time.Hour)) {
		t.Fatalf("permissions end at %v after AdminExtend", got)
	}
	actions := map[string]int{}
	for _, ev := range e.audit() {
		actions[ev.Action]++
	}
	for _, a := range []string{"pim.adminAssign", "pim.selfExtend", "pim.approve", "pim.adminExtend"} {
		if actions[a] != 1 {
			t.Errorf("%d %s records in the audit log; want 1", actions[a], a)
		}
	}
}

// TestPIMAuthenticationContext: a role whose settings ask for the
// authentication context c1. With no conditional access policy naming c1,
// PIM's fallback asks for a second factor: a password-only token is
// refused and an MFA one would do. Once a policy names c1 its controls
// decide: a compliant device (which a token cannot show) refuses even the
// MFA token; MFA lets it through, and still refuses the password-only one.
func TestPIMAuthenticationContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice := e.createUser("alice@contoso.com")
	mint := func(amr ...string) string {
		secret, hash := authn.NewToken()
		if err := e.st.CreateToken(context.Background(), store.Token{Hash: hash, PrincipalID: alice, CreatedAt: time.Now(),
			ExpiresAt: time.Now().Add(time.Hour), Description: "test", AMR: amr}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	pwd, mfa := mint("pwd"), mint("pwd", "otp", "mfa")
	const scope = "/apps/payroll"
	for _, role := range []string{"Contributor", "Reader"} {
		e.admin("POST", "/api/v1/pim/requests", map[string]any{"requestType": "AdminAssign", "principalId": alice, "roleDefinitionId": role,
			"scope": scope, "scheduleInfo": map[string]any{"expiration": map[string]any{"type": "AfterDuration", "duration": "P30D"}}}).want(http.StatusCreated)
		e.admin("PUT", "/api/v1/pim/policies", map[string]any{"roleDefinitionId": role, "scope": scope,
			"policy": map[string]any{"activationMaxDuration": "PT4H", "requireMfa": false, "requireJustification": false, "authenticationContext": "c1",
				"approvalTimeout": "P1D", "eligibilityMaxDuration": "P365D", "assignmentMaxDuration": "P180D"}}).want(http.StatusOK)
	}
	activate := func(role string) map[string]any {
		return map[string]any{"requestType": "SelfActivate", "roleDefinitionId": role, "scope": scope}
	}
	e.call(pwd, "POST", "/api/v1/pim/requests", activate("Contributor")).problem(http.StatusUnauthorized, "AuthenticationContextRequired", "")

	var pol struct{ ID string }
	e.admin("POST", "/api/v1/identity/conditionalAccess/policies", map[string]any{"displayName": "c1 needs a compliant device", "state": "enabled",
		"conditions": map[string]any{"users": map[string]any{"includeUsers": []string{alice}}, "clientAppTypes": []string{"all"},
			"applications": map[string]any{"includeAuthenticationContextClassReferences": []string{"c1"}}},
		"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"compliantDevice"}}}).want(http.StatusCreated).decode(&pol)
	e.caughtUp()
	e.call(mfa, "POST", "/api/v1/pim/requests", activate("Contributor")).problem(http.StatusUnauthorized, "AuthenticationContextRequired", "")

	e.admin("PATCH", "/api/v1/identity/conditionalAccess/policies/"+pol.ID, map[string]any{
		"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"mfa"}}}).want(http.StatusNoContent)
	e.caughtUp()
	e.call(pwd, "POST", "/api/v1/pim/requests", activate("Contributor")).problem(http.StatusUnauthorized, "AuthenticationContextRequired", "")
	var req struct{ Status string }
	e.call(mfa, "POST", "/api/v1/pim/requests", activate("Contributor")).want(http.StatusCreated).decode(&req)
	if req.Status != "Provisioned" {
		t.Fatalf("activation with the context met: %+v", req)
	}
}

// caughtUp waits until this node's snapshot holds every committed write.
func (e *env) caughtUp() {
	e.t.Helper()
	rev, err := e.st.Revision(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.live.WaitFor(context.Background(), rev); err != nil {
		e.t.Fatal(err)
	}
}

// TestPIMOneEligibilityOverAPI: a principal holds at most one eligibility
// for a role at a scope. A second AdminAssign is refused with 409
// RoleAssignmentExists naming the one there is; one that has ended is
// replaced, and the record of the AdminAssign names it.
func TestPIMOneEligibilityOverAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, bob := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	const scope = "/apps/payroll"
	assign := func(principal string) map[string]any {
		return map[string]any{"requestType": "AdminAssign", "principalId": principal, "roleDefinitionId": "Contributor", "scope": scope,
			"scheduleInfo": map[string]any{"expiration": map[string]any{"type": "AfterDuration", "duration": "P30D"}}}
	}
	var first, again struct {
		TargetScheduleID string `json:"targetScheduleId"`
	}
	e.admin("POST", "/api/v1/pim/requests", assign(alice)).want(http.StatusCreated).decode(&first)
	msg := e.admin("POST", "/api/v1/pim/requests", assign(alice)).problem(http.StatusConflict, "RoleAssignmentExists", "")
	if first.TargetScheduleID == "" || !strings.Contains(msg, first.TargetScheduleID) {
		t.Fatalf("the refusal %q does not name eligibility %q", msg, first.TargetScheduleID)
	}

	// Bob's ended yesterday (made with a clock two days back).
	past := pim.New(e.st)
	past.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	day := pim.Duration(24 * time.Hour)
	ended, err := past.Submit(context.Background(), pim.Caller{ID: e.adminID, Admin: true}, pim.Request{RequestType: pim.AdminAssign,
		PrincipalID: bob, RoleDefinitionID: "Contributor", Scope: scope, ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: &day}}})
	if err != nil {
		t.Fatal(err)
	}
	e.admin("POST", "/api/v1/pim/requests", assign(bob)).want(http.StatusCreated).decode(&again)
	var els struct{ Value []struct{ ID string } }
	e.admin("GET", "/api/v1/pim/eligibilities?principalId="+bob, nil).want(http.StatusOK).decode(&els)
	if len(els.Value) != 1 || els.Value[0].ID != again.TargetScheduleID || again.TargetScheduleID == ended.TargetID {
		t.Fatalf("bob's eligibilities %+v; the new one %s, the ended one %s", els.Value, again.TargetScheduleID, ended.TargetID)
	}
	var replaced []string
	for _, ev := range e.audit() {
		var d struct {
			TargetScheduleID string   `json:"targetScheduleId"`
			Replaced         []string `json:"replacedScheduleIds"`
		}
		if ev.Action == "pim.adminAssign" && json.Unmarshal(ev.Details, &d) == nil && d.TargetScheduleID == again.TargetScheduleID {
			replaced = d.Replaced
		}
	}
	if len(replaced) != 1 || replaced[0] != ended.TargetID {
		t.Fatalf("the AdminAssign's record names %v as replaced; want %s", replaced, ended.TargetID)
	}
}
