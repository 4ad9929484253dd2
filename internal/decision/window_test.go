package decision_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// windowStart is when the time-bound assignments of these tests start.
var windowStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// assignWindow is assign with a window [start, end).
func assignWindow(t testing.TB, id, principal, role, scope string, start, end time.Time) store.Object {
	a := rbac.Assignment{ID: id, PrincipalID: principal, RoleDefinitionID: role, Scope: scope,
		Schedule: schedule.Schedule{StartDateTime: &start, EndDateTime: &end, AssignmentType: schedule.Activated}}
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return store.Object{Kind: rbac.Kind, ID: id, Body: b}
}

// directoryRoleWindow is a directory role assignment in force in [start, end).
func directoryRoleWindow(t testing.TB, id, principal, role string, start, end time.Time) store.Object {
	a := &directory.RoleAssignment{ID: id, PrincipalID: principal, RoleDefinitionID: role, Schedule: schedule.Schedule{StartDateTime: &start, EndDateTime: &end}}
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	o, err := directory.RoleAssignments.Object(a)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestAuthorizeWindow: an activated Owner assignment authorises admin
// actions from its start until just before its end, at the time asked,
// whatever the snapshot's age; AdminAccess answers for now.
func TestAuthorizeWindow(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	now := time.Now()
	put(t, st, user(t, alice, "alice@contoso.com", true), user(t, dave, "dave@contoso.com", true),
		assignWindow(t, aOwner, alice, "Owner", "/", windowStart, windowStart.Add(8*time.Hour)),
		assignWindow(t, aRead, dave, "Owner", "/", now.Add(-time.Hour), now.Add(time.Hour)))
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		at     time.Time
		allow  bool
		reason rbac.Reason
	}{
		{"before the start", windowStart.Add(-time.Second), false, rbac.ReasonNoAssignment},
		{"at the start", windowStart, true, rbac.ReasonGranted},
		{"inside", windowStart.Add(7 * time.Hour), true, rbac.ReasonGranted},
		{"at the end", windowStart.Add(8 * time.Hour), false, rbac.ReasonNoAssignment},
		{"after the end", windowStart.Add(9 * time.Hour), false, rbac.ReasonNoAssignment},
	} {
		var d rbac.Decision
		if err := snap.Authorize(alice, decision.ActionGrantRoles, "/directory/users", tt.at, &d); err != nil {
			t.Fatal(err)
		}
		if d.Allowed != tt.allow || d.Reason != tt.reason {
			t.Errorf("%s: allowed %v (%v), want %v (%v)", tt.name, d.Allowed, d.Reason, tt.allow, tt.reason)
		}
	}
	if got := snap.AdminAccess(alice); got != decision.NoAccess {
		t.Errorf("AdminAccess of an ended activation = %v, want NoAccess", got)
	}
	if got := snap.AdminAccess(dave); got != decision.WriteAccess {
		t.Errorf("AdminAccess of a current activation = %v, want WriteAccess", got)
	}
	// A zero time is the current time, not "ignore windows".
	var d rbac.Decision
	if err := snap.Authorize(alice, decision.ActionReadStatus, "/", time.Time{}, &d); err != nil || d.Allowed {
		t.Errorf("zero time: allowed %v (%v), err %v", d.Allowed, d.Reason, err)
	}
}

// TestDecideWindow: Decide takes both the role assignments and the
// directory roles at the request's time, so that a role activated for an
// hour grants access, and a conditional access policy aimed at a directory
// role applies, only during that hour.
func TestDecideWindow(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	end := windowStart.Add(time.Hour)
	put(t, st, user(t, alice, "alice@contoso.com", true), user(t, bob, "bob@contoso.com", true),
		assignWindow(t, aOwner, alice, "Contributor", "/apps/payroll", windowStart, end),
		assign(t, aRead, bob, "Contributor", "/apps/payroll"),
		directoryRoleWindow(t, "20000000-0000-4000-8000-000000000001", bob, directory.GlobalAdministratorRoleID, windowStart, end),
		policy(t, "d1000000-0000-4000-8000-000000000003", `{"displayName": "MFA for Global Administrators", "state": "enabled",
		  "conditions": {"users": {"includeRoles": ["`+directory.GlobalAdministratorRoleID+`"]}, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
		  "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`),
	)
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		who  string
		at   time.Time
		want decision.Verdict
	}{
		{"activated Contributor inside", alice, windowStart.Add(30 * time.Minute), decision.Allow},
		{"activated Contributor at the end", alice, end, decision.Deny},
		{"activated Contributor before the start", alice, windowStart.Add(-time.Minute), decision.Deny},
		{"activated Global Administrator: the role's policy applies", bob, windowStart, decision.Challenge},
		{"after it: the policy no longer applies", bob, end, decision.Allow},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := &decision.Request{Action: "Microsoft.Web/sites/write", Scope: "/apps/payroll/runs", Access: access.Request{
				Identity: access.IdentityUser, UserID: tt.who, Applications: []string{payrollApp}, ClientApp: access.ClientAppBrowser,
				Platform: access.PlatformWindows, IP: netip.MustParseAddr("203.0.113.7"), Country: "NL", Now: tt.at}}
			var d decision.Decision
			if err := snap.Decide(req, &d); err != nil {
				t.Fatal(err)
			}
			if d.Verdict != tt.want {
				t.Errorf("%v (access %v, rbac %v: %v), want %v", d.Verdict, d.Access.Outcome, d.RBAC.Allowed, d.RBAC.Reason, tt.want)
			}
		})
	}
}

// TestOwnerRemainsWindow: only a standing Owner keeps the tenant
// administrable; an activation that will end does not.
func TestOwnerRemainsWindow(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	now := time.Now()
	put(t, st, user(t, alice, "alice@contoso.com", true), assignWindow(t, aOwner, alice, "Owner", "/", now.Add(-time.Hour), now.Add(time.Hour)))
	if ok, err := decision.OwnerRemains(context.Background(), st); err != nil || ok {
		t.Errorf("with only a time-bound Owner: %v, %v; want false", ok, err)
	}
	put(t, st, assign(t, aRead, alice, "Owner", "/"))
	if ok, err := decision.OwnerRemains(context.Background(), st); err != nil || !ok {
		t.Errorf("with a standing Owner: %v, %v; want true", ok, err)
	}
}
