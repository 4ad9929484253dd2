package pim_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// extendAssignment is a request of kind (SelfExtend, AdminExtend, ...)
// about principal's active assignment of Contributor at the scope, for
// d more (0: no expiration given).
func extendAssignment(kind, principal string, d time.Duration) pim.Request {
	r := pim.Request{RequestType: kind, Target: pim.TargetAssignment, PrincipalID: principal, RoleDefinitionID: contributor, Scope: scope,
		Justification: "still needed"}
	if d > 0 {
		r.ScheduleInfo.Expiration = pim.Expiration{Type: "AfterDuration", Duration: dur(d)}
	}
	return r
}

// wantRefusal checks that err is a *pim.Error with code, naming field,
// whose message holds words.
func wantRefusal(t *testing.T, err error, code, field, words string) {
	t.Helper()
	var pe *pim.Error
	if !errors.As(err, &pe) || pe.Code != code || pe.Field != field || !strings.Contains(pe.Message, words) {
		t.Fatalf("got %v (%#v); want %s on %q saying %q", err, pe, code, field, words)
	}
}

// storedEnd is the end of the active assignment kind/id as the store
// has it.
func storedEnd(t *testing.T, st store.Store, kind, id string) *time.Time {
	t.Helper()
	o, err := st.Get(context.Background(), kind, id)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		EndDateTime    *time.Time `json:"endDateTime"`
		AssignmentType string     `json:"assignmentType"`
	}
	if err := json.Unmarshal(o.Body, &a); err != nil {
		t.Fatal(err)
	}
	return a.EndDateTime
}

// auditOf is the details of the audit records of action, newest first.
func auditOf(t *testing.T, st store.Store, action string) []map[string]any {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), store.AuditQuery{Action: action, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		var d map[string]any
		if err := json.Unmarshal(ev.Details, &d); err != nil {
			t.Fatal(err)
		}
		d["_actor"], d["_target"] = ev.Actor, ev.Target
		out = append(out, d)
	}
	return out
}

// TestAdminExtendAssignment: an administrator moves the end of a
// time-bound active assignment — the same assignment, bounded by the
// role's active assignment settings, not the eligibility ones — and the
// RBAC engine grants until the new end at once; the old end passing
// removes nothing; the step is audited.
func TestAdminExtendAssignment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	p := pim.DefaultPolicy()
	p.AssignmentMaxDuration = pim.Duration(60 * day) // the eligibility maximum stays P365D
	if err := s.SetPolicy(ctx, "admin", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: contributor, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	as := assign(t, s, "bob", 20)
	oldEnd := *as.ScheduleInfo.Expiration.EndDateTime
	if !grants(t, st, "bob", oldEnd.Add(-time.Nanosecond)) || grants(t, st, "bob", oldEnd) {
		t.Fatal("the assignment is not in force until its end")
	}
	// An eligibility extension does not reach the assignment.
	elig := extendAssignment(pim.AdminExtend, "bob", 10*day)
	elig.Target = ""
	if _, err := s.Submit(ctx, admin, elig); !errors.Is(err, pim.ErrNothingToExtend) {
		t.Fatalf("AdminExtend of an eligibility bob does not have: %v", err)
	}
	noWhy := extendAssignment(pim.AdminExtend, "bob", 10*day)
	noWhy.Justification = ""
	_, err := s.Submit(ctx, admin, noWhy)
	wantRefusal(t, err, "InvalidRoleAssignmentRequest", "justification", "justification for an active assignment")
	_, err = s.Submit(ctx, admin, extendAssignment(pim.AdminExtend, "bob", 41*day)) // 61 days from now
	wantRefusal(t, err, "InvalidRoleAssignmentRequest", "scheduleInfo.expiration", "maximum active assignment of P60D")
	earlier := extendAssignment(pim.AdminExtend, "bob", 0)
	e := oldEnd.Add(-day)
	earlier.ScheduleInfo.Expiration = pim.Expiration{Type: "AfterDateTime", EndDateTime: &e}
	_, err = s.Submit(ctx, admin, earlier)
	wantRefusal(t, err, "InvalidRoleAssignmentRequest", "scheduleInfo.expiration", "after the assignment's current end")
	if !storedEnd(t, st, rbac.Kind, as.TargetID).Equal(oldEnd) {
		t.Fatal("a refused extension moved the end")
	}

	c.Add(day) // not in its last 14 days: an administrator extends it any time
	x, err := s.Submit(ctx, admin, extendAssignment(pim.AdminExtend, "bob", 30*day))
	newEnd := oldEnd.Add(30 * day)
	if err != nil || x.Status != pim.StatusProvisioned || x.TargetID != as.TargetID || x.ScheduleInfo.Expiration.EndDateTime == nil ||
		!x.ScheduleInfo.Expiration.EndDateTime.Equal(newEnd) {
		t.Fatalf("AdminExtend: %+v %v", x, err)
	}
	if got := storedEnd(t, st, rbac.Kind, as.TargetID); got == nil || !got.Equal(newEnd) {
		t.Fatalf("stored end %v; want %v", got, newEnd)
	}
	if objs, _ := st.List(ctx, rbac.Kind, store.ListOptions{}); len(objs) != 1 {
		t.Fatalf("%d assignments; the extension is to move the one there is", len(objs))
	}
	if !grants(t, st, "bob", oldEnd) || !grants(t, st, "bob", newEnd.Add(-time.Nanosecond)) || grants(t, st, "bob", newEnd) {
		t.Fatal("the engine does not grant until the new end")
	}
	recs := auditOf(t, st, "pim.adminExtend")
	if len(recs) != 1 || recs[0]["_actor"] != "admin" || recs[0]["_target"] != "/pim/requests/"+x.ID || recs[0]["status"] != pim.StatusProvisioned ||
		recs[0]["targetScheduleId"] != as.TargetID || recs[0]["endDateTime"] != newEnd.Format(time.RFC3339) || recs[0]["principalId"] != "bob" {
		t.Fatalf("audit %+v", recs)
	}
	c.Add(20 * day) // past the old end
	if _, expired, err := s.Sweep(ctx); err != nil || expired != 0 {
		t.Fatalf("sweep past the old end: %d %v", expired, err)
	}
	if !grants(t, st, "bob", c.Now()) {
		t.Fatal("the role ended at the old end")
	}
	// The settings change: an end is required now, and no extension
	// takes one away.
	p.AssignmentExpirationRequired = true
	if err := s.SetPolicy(ctx, "admin", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: contributor, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	forever := extendAssignment(pim.AdminExtend, "bob", 0)
	forever.ScheduleInfo.Expiration.Type = "NoExpiration"
	_, err = s.Submit(ctx, admin, forever)
	wantRefusal(t, err, "InvalidRoleAssignmentRequest", "scheduleInfo.expiration", "require active assignments to end")
}

// TestExtendAssignmentRefused: what has no end to move, or is not an
// administrator's assignment, is not extended, with a reason.
func TestExtendAssignmentRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		prepare func(t *testing.T, s *pim.Service)
		caller  pim.Caller
		req     pim.Request
		field   string
		words   string
	}{
		{"an activation", func(t *testing.T, s *pim.Service) {
			eligible(t, s, "alice", 30)
			if _, err := activate(s, alice, time.Hour, "month end"); err != nil {
				t.Fatal(err)
			}
		}, admin, extendAssignment(pim.AdminExtend, "alice", time.Hour), "target", "an activation is not extended"},
		{"an activation, by its holder", func(t *testing.T, s *pim.Service) {
			eligible(t, s, "alice", 30)
			if _, err := activate(s, alice, time.Hour, "month end"); err != nil {
				t.Fatal(err)
			}
		}, alice, extendAssignment(pim.SelfExtend, "alice", time.Hour), "target", "an activation is not extended"},
		{"a permanent assignment", func(t *testing.T, s *pim.Service) {
			r := extendAssignment(pim.AdminAssign, "bob", 0)
			r.ScheduleInfo.Expiration.Type = "NoExpiration"
			if _, err := s.Submit(context.Background(), admin, r); err != nil {
				t.Fatal(err)
			}
		}, admin, extendAssignment(pim.AdminExtend, "bob", day), "target", "no end: there is nothing to extend"},
		{"none", func(*testing.T, *pim.Service) {}, admin, extendAssignment(pim.AdminExtend, "bob", day), "target", "no time-bound active assignment"},
		{"another principal's", func(t *testing.T, s *pim.Service) { assign(t, s, "carol", 10) },
			admin, extendAssignment(pim.AdminExtend, "bob", day), "target", "no time-bound active assignment"},
		{"not in its last 14 days", func(t *testing.T, s *pim.Service) { assign(t, s, "bob", 15) },
			pim.Caller{ID: "bob"}, extendAssignment(pim.SelfExtend, "bob", day), "target", "in its last 14 days"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, st, _ := setup(t)
			tt.prepare(t, s)
			before, err := st.Revision(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Submit(context.Background(), tt.caller, tt.req)
			wantRefusal(t, err, "RoleAssignmentDoesNotExist", tt.field, tt.words)
			if !errors.Is(err, pim.ErrNoAssignmentToExtend) {
				t.Fatalf("%v is not ErrNoAssignmentToExtend", err)
			}
			if after, _ := st.Revision(context.Background()); after != before {
				t.Fatal("a refused request wrote to the store")
			}
		})
	}
}

// TestSelfExtendAssignment: the principal asks, in the assignment's last
// 14 days, to extend it; the request waits for an administrator (not the
// principal, not someone without the right) apart from a request to
// extend their eligibility of the same role; approved, the same
// assignment ends later, and the engine grants until then. A member does
// not extend their group's assignment.
func TestSelfExtendAssignment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	s.Groups = func(id string) []string {
		if id == "erin" {
			return []string{"g-payroll"}
		}
		return nil
	}
	bob := pim.Caller{ID: "bob"}
	as := assign(t, s, "bob", 20)
	el := eligible(t, s, "bob", 20)
	oldEnd := *as.ScheduleInfo.Expiration.EndDateTime
	if _, err := s.Submit(ctx, bob, extendAssignment(pim.SelfExtend, "", 10*day)); !errors.Is(err, pim.ErrNoAssignmentToExtend) {
		t.Fatalf("20 days before the end: %v", err)
	}
	c.Add(7 * day)
	_, err := s.Submit(ctx, bob, extendAssignment(pim.SelfExtend, "", 175*day)) // the default maximum is P180D from now
	wantRefusal(t, err, "InvalidRoleAssignmentRequest", "scheduleInfo.expiration", "maximum active assignment of P180D")
	x, err := s.Submit(ctx, bob, extendAssignment(pim.SelfExtend, "", 10*day))
	if err != nil || x.Status != pim.StatusPendingApproval || x.Target != pim.TargetAssignment || x.TargetID != as.TargetID || x.ApprovalDeadline == nil {
		t.Fatalf("SelfExtend: %+v %v", x, err)
	}
	if got := storedEnd(t, st, rbac.Kind, as.TargetID); !got.Equal(oldEnd) {
		t.Fatalf("the end moved before the approval: %v", got)
	}
	if _, err := s.Submit(ctx, bob, extendAssignment(pim.SelfExtend, "", 5*day)); !errors.Is(err, pim.ErrPending) {
		t.Fatalf("a second request: %v", err)
	}
	xe, err := s.Submit(ctx, bob, pim.Request{RequestType: pim.SelfExtend, RoleDefinitionID: contributor, Scope: scope,
		ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(10 * day)}}})
	if err != nil || xe.Status != pim.StatusPendingApproval || xe.Target != pim.TargetEligibility || xe.LinkedEligibilityID != el.TargetID {
		t.Fatalf("SelfExtend of the eligibility beside it: %+v %v", xe, err)
	}
	if _, err := s.Decide(ctx, bob, x.ID, true, "mine"); !errors.Is(err, pim.ErrOwnRequest) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := s.Decide(ctx, pim.Caller{ID: "carol"}, x.ID, true, "ok"); !errors.Is(err, pim.ErrNotApprover) {
		t.Fatalf("a non-administrator approves: %v", err)
	}
	c.Add(time.Hour)
	got, err := s.Decide(ctx, admin, x.ID, true, "project runs on")
	newEnd := oldEnd.Add(10 * day)
	if err != nil || got.Status != pim.StatusProvisioned || got.TargetID != as.TargetID || len(got.Approvals) != 1 ||
		!got.ScheduleInfo.Expiration.EndDateTime.Equal(newEnd) {
		t.Fatalf("approved: %+v %v", got, err)
	}
	if e := storedEnd(t, st, rbac.Kind, as.TargetID); e == nil || !e.Equal(newEnd) {
		t.Fatalf("stored end %v; want %v", e, newEnd)
	}
	if !grants(t, st, "bob", oldEnd) || !grants(t, st, "bob", newEnd.Add(-time.Nanosecond)) || grants(t, st, "bob", newEnd) {
		t.Fatal("the engine does not grant until the new end")
	}
	els, _ := pim.Eligibilities(ctx, st, "bob")
	if len(els) != 1 || !els[0].EndDateTime.Equal(oldEnd) {
		t.Fatalf("the eligibility moved with the assignment: %+v", els)
	}
	if got, err := s.Decide(ctx, admin, xe.ID, false, "not this one"); err != nil || got.Status != pim.StatusDenied {
		t.Fatalf("denied: %+v %v", got, err)
	}
	asked, approved := auditOf(t, st, "pim.selfExtend"), auditOf(t, st, "pim.approve")
	if len(asked) != 2 || asked[1]["_actor"] != "bob" || asked[1]["status"] != pim.StatusPendingApproval || asked[1]["targetScheduleId"] != as.TargetID {
		t.Fatalf("audit of the request %+v", asked)
	}
	if len(approved) != 1 || approved[0]["_actor"] != "admin" || approved[0]["status"] != pim.StatusProvisioned ||
		approved[0]["endDateTime"] != newEnd.Format(time.RFC3339) || approved[0]["targetScheduleId"] != as.TargetID {
		t.Fatalf("audit of the approval %+v", approved)
	}

	// A group's assignment is the group's: a member asks about their own
	// only, and not for the group.
	assign(t, s, "g-payroll", 10)
	erin := pim.Caller{ID: "erin"}
	if _, err := s.Submit(ctx, erin, extendAssignment(pim.SelfExtend, "", day)); !errors.Is(err, pim.ErrNoAssignmentToExtend) {
		t.Fatalf("a member extends the group's assignment: %v", err)
	}
	if _, err := s.Submit(ctx, erin, extendAssignment(pim.SelfExtend, "g-payroll", day)); !errors.Is(err, pim.ErrForbidden) {
		t.Fatalf("a member asks for the group: %v", err)
	}
	if _, err := s.Submit(ctx, admin, extendAssignment(pim.AdminExtend, "g-payroll", day)); err != nil {
		t.Fatalf("an administrator extends the group's assignment: %v", err)
	}
}

// TestSelfExtendAssignmentEndsMeanwhile: an extension approved after the
// assignment ended extends nothing — ended, then removed by the sweep —
// and the request stays pending until it times out.
func TestSelfExtendAssignmentEndsMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	p := pim.DefaultPolicy()
	p.ApprovalTimeout = pim.Duration(3 * day)
	if err := s.SetPolicy(ctx, "admin", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: contributor, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	as := assign(t, s, "bob", 1)
	x, err := s.Submit(ctx, pim.Caller{ID: "bob"}, extendAssignment(pim.SelfExtend, "", day))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(day)
	if _, err := s.Decide(ctx, admin, x.ID, true, "late"); !errors.Is(err, pim.ErrNoAssignmentToExtend) {
		t.Fatalf("approved at the end: %v", err)
	}
	if _, expired, err := s.Sweep(ctx); err != nil || expired != 1 {
		t.Fatalf("sweep at the end: %d %v", expired, err)
	}
	if _, err := s.Decide(ctx, admin, x.ID, true, "later"); !errors.Is(err, pim.ErrNoAssignmentToExtend) {
		t.Fatalf("approved after the sweep: %v", err)
	}
	if got, _ := pim.GetRequest(ctx, st, x.ID); got.Status != pim.StatusPendingApproval || got.TargetID != as.TargetID {
		t.Fatalf("request %+v", got)
	}
}

// TestRenewAssignment: an active assignment is removed when it ends (the
// sweep), so SelfRenew and AdminRenew of one are refused, naming target,
// before and after its end; an administrator assigns it again.
func TestRenewAssignment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	as := assign(t, s, "bob", 10)
	renew := func(phase string) {
		t.Helper()
		for _, tt := range []struct {
			caller pim.Caller
			kind   string
		}{{pim.Caller{ID: "bob"}, pim.SelfRenew}, {admin, pim.AdminRenew}} {
			_, err := s.Submit(ctx, tt.caller, extendAssignment(tt.kind, "bob", 10*day))
			var pe *pim.Error
			if !errors.As(err, &pe) || pe.Code != "InvalidRoleAssignmentRequest" || pe.Field != "target" ||
				!strings.Contains(pe.Message, "assigns the role again (AdminAssign)") {
				t.Fatalf("%s, %s: %v", phase, tt.kind, err)
			}
		}
	}
	renew("in force")
	c.Add(10 * day)
	renew("ended, not swept")
	_, err := s.Submit(ctx, admin, extendAssignment(pim.AdminExtend, "bob", day))
	wantRefusal(t, err, "RoleAssignmentDoesNotExist", "target", "ended at "+c.Now().Format(time.RFC3339)+": an administrator assigns the role again")
	if _, expired, err := s.Sweep(ctx); err != nil || expired != 1 {
		t.Fatalf("sweep: %d %v", expired, err)
	}
	if _, err := st.Get(ctx, rbac.Kind, as.TargetID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the ended assignment is still stored: %v", err)
	}
	renew("removed")
	assign(t, s, "bob", 10)
	if !grants(t, st, "bob", c.Now()) {
		t.Fatal("assigned again, not granted")
	}
}

// TestExtendDirectoryAssignment: a directory role's active assignment is
// extended as an RBAC one is — by an administrator, and on the
// principal's request with approval — and the directory snapshot holds
// the role until the new end.
func TestExtendDirectoryAssignment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	const user = "3f1c2b7a-8d4e-4f6a-9b0c-1d2e3f4a5b6c"
	if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		o, err := directory.Users.Object(&directory.User{ID: user, UserPrincipalName: "gina@contoso.com", DisplayName: "Gina"})
		if err != nil {
			return err
		}
		return tx.Create(ctx, o)
	}); err != nil {
		t.Fatal(err)
	}
	req := func(kind string, d time.Duration) pim.Request {
		return pim.Request{RequestType: kind, Target: pim.TargetAssignment, PrincipalID: user, RoleKind: pim.RoleKindDirectory,
			RoleDefinitionID: "Global Administrator", Justification: "migration",
			ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Type: "AfterDuration", Duration: dur(d)}}}
	}
	as, err := s.Submit(ctx, admin, req(pim.AdminAssign, 20*day))
	if err != nil {
		t.Fatal(err)
	}
	end0 := *as.ScheduleInfo.Expiration.EndDateTime
	holds := func(at time.Time) bool {
		t.Helper()
		var snap *directory.Snapshot
		if err := st.View(ctx, func(ctx context.Context, r store.Reader, rev int64) error {
			var err error
			snap, err = directory.Build(ctx, r, rev)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return snap.HasDirectoryRoleAt(user, directory.GlobalAdministratorRoleID, at)
	}
	if !holds(end0.Add(-time.Nanosecond)) || holds(end0) {
		t.Fatal("the assignment is not in force until its end")
	}
	x, err := s.Submit(ctx, admin, req(pim.AdminExtend, 5*day))
	end1 := end0.Add(5 * day)
	if err != nil || x.TargetID != as.TargetID || !x.ScheduleInfo.Expiration.EndDateTime.Equal(end1) {
		t.Fatalf("AdminExtend: %+v %v", x, err)
	}
	if got := storedEnd(t, st, directory.RoleAssignments.Name(), as.TargetID); got == nil || !got.Equal(end1) {
		t.Fatalf("stored end %v", got)
	}
	if !holds(end0) || holds(end1) {
		t.Fatal("the snapshot does not hold the role until the new end")
	}
	c.Add(20 * day) // 5 days before the end
	ask, err := s.Submit(ctx, pim.Caller{ID: user}, req(pim.SelfExtend, 10*day))
	if err != nil || ask.Status != pim.StatusPendingApproval || ask.TargetID != as.TargetID {
		t.Fatalf("SelfExtend: %+v %v", ask, err)
	}
	if _, err := s.Decide(ctx, admin, ask.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	end2 := end1.Add(10 * day)
	if !holds(end1) || holds(end2) {
		t.Fatal("the snapshot does not hold the role until the approved end")
	}
	_, err = s.Submit(ctx, admin, req(pim.AdminRenew, day))
	wantRefusal(t, err, "InvalidRoleAssignmentRequest", "target", "AdminAssign")
}

// TestExtendAssignmentNotified: the request to extend an active
// assignment, its approval and an administrator's extension are posted
// under the Admin_Assignment notification rules (not Admin_Eligibility),
// to the administrators as approvers, and say it is the active assignment
// that is extended.
func TestExtendAssignmentNotified(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	p := pim.DefaultPolicy()
	p.Notifications = []pim.NotificationRule{
		{ID: pim.NotificationRuleID(pim.RecipientApprover, pim.GroupAdminEligibility), Level: pim.LevelNone, DefaultRecipients: true},
		{ID: pim.NotificationRuleID(pim.RecipientApprover, pim.GroupAdminAssignment), Level: pim.LevelCritical, DefaultRecipients: true},
	}
	setRoleNotify(t, s, p, recv.srv.URL)
	as := assign(t, s, "bob", 20)
	n := startNotifier(t, st, dir, newWebhookSecret(t), nil)
	c.Add(7 * day)
	x, err := s.Submit(ctx, pim.Caller{ID: "bob"}, extendAssignment(pim.SelfExtend, "", 10*day))
	if err != nil {
		t.Fatal(err)
	}
	root := pim.Caller{ID: "root", Admin: true}
	approved, err := s.Decide(ctx, root, x.ID, true, "project runs on")
	if err != nil {
		t.Fatal(err)
	}
	extended, err := s.Submit(ctx, root, extendAssignment(pim.AdminExtend, "bob", 5*day))
	if err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	ds := recv.delivered()
	if want := []string{pim.EventApprovalRequired, pim.EventRequestApproved, pim.EventAssignmentExtended}; !slices.Equal(eventTypes(ds), want) {
		t.Fatalf("events %v; want %v", eventTypes(ds), want)
	}
	ask, yes, ext := ds[0].note, ds[1].note, ds[2].note
	rootKeys := []string{"root|root@contoso.com|root@contoso.com"}
	if ask.Request.Target != pim.TargetAssignment || ask.Request.TargetScheduleID != as.TargetID ||
		!slices.Equal(personKeys(ask.Recipients.Approvers), rootKeys) ||
		ask.Summary != "bob@contoso.com asks to extend their active assignment of Contributor at /apps/payroll; approval is needed" {
		t.Fatalf("approval required %+v", ask)
	}
	if yes.Recipients.Approvers != nil || !slices.Equal(personKeys(yes.Recipients.Admins), rootKeys) ||
		yes.Summary != "root@contoso.com approved bob@contoso.com's request to extend their active assignment of Contributor at /apps/payroll until "+
			approved.ScheduleInfo.Expiration.EndDateTime.Format(time.RFC3339) {
		t.Fatalf("approved %+v", yes)
	}
	if ext.Request.TargetScheduleID != as.TargetID ||
		ext.Summary != "root@contoso.com extended bob@contoso.com's active assignment of Contributor at /apps/payroll until "+
			extended.ScheduleInfo.Expiration.EndDateTime.Format(time.RFC3339) {
		t.Fatalf("extended %+v", ext)
	}
}
