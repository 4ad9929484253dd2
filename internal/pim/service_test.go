package pim_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// clock is the tests' time: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time         { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)    { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func dur(d time.Duration) *pim.Duration { v := pim.Duration(d); return &v }

const (
	contributor = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	scope       = "/apps/payroll"
)

var (
	admin = pim.Caller{ID: "admin", MFA: true, Admin: true}
	alice = pim.Caller{ID: "alice", MFA: true}
)

func setup(t *testing.T) (*pim.Service, store.Store, *clock) {
	t.Helper()
	st := storetest.OpenSQLite(t)
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	s := pim.New(st)
	s.Now = c.Now
	return s, st, c
}

// storeEngine compiles the role assignments in the store, as a snapshot
// does.
func storeEngine(t testing.TB, st store.Store) *rbac.Engine {
	t.Helper()
	objs, err := st.List(context.Background(), rbac.Kind, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var as []rbac.Assignment
	for _, o := range objs {
		var a rbac.Assignment
		if err := json.Unmarshal(o.Body, &a); err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	eng, err := rbac.Compile(nil, as, nil, rbac.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// grants says whether principal may write at scope at t, by the role
// assignments in the store — the question the decision engine answers.
func grants(t *testing.T, st store.Store, principal string, at time.Time) bool {
	t.Helper()
	var d rbac.Decision
	storeEngine(t, st).Check(&rbac.Request{PrincipalID: principal, Groups: []string{}, Action: "Microsoft.Web/sites/write", Scope: scope, Now: at}, &d)
	return d.Allowed
}

func eligible(t *testing.T, s *pim.Service, principal string, days int) pim.Request {
	t.Helper()
	r, err := s.Submit(context.Background(), admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: principal, RoleDefinitionID: contributor,
		Scope: scope, ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Type: "AfterDuration", Duration: dur(time.Duration(days) * 24 * time.Hour)}}})
	if err != nil || r.Status != pim.StatusProvisioned {
		t.Fatalf("eligibility for %s: %+v %v", principal, r, err)
	}
	return r
}

func activate(s *pim.Service, who pim.Caller, d time.Duration, why string) (pim.Request, error) {
	return s.Submit(context.Background(), who, pim.Request{RequestType: pim.SelfActivate, RoleDefinitionID: contributor, Scope: scope,
		Justification: why, ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Type: "AfterDuration", Duration: dur(d)}}})
}

// TestActivateExpire: an eligible user activates with MFA and a
// justification; the role is in force for exactly the window; a second
// activation, an early deactivation and a too long one are refused; the
// sweep removes the expired assignment. Every step is audited.
func TestActivateExpire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	if _, err := activate(s, alice, time.Hour, "fix payroll"); !errors.Is(err, pim.ErrNotEligible) {
		t.Fatalf("before eligibility: %v", err)
	}
	eligible(t, s, "alice", 30)
	if grants(t, st, "alice", c.Now()) {
		t.Fatal("an eligibility grants by itself")
	}
	if _, err := activate(s, pim.Caller{ID: "alice"}, time.Hour, "fix payroll"); !errors.Is(err, pim.ErrMFARequired) {
		t.Fatalf("without MFA: %v", err)
	}
	if _, err := activate(s, alice, time.Hour, " "); err == nil || err.Error() != "justification: the role's settings require a justification" {
		t.Fatalf("without a justification: %v", err)
	}
	if _, err := activate(s, alice, 9*time.Hour, "fix payroll"); err == nil {
		t.Fatal("9 hours were granted (the default maximum is 8)")
	}
	if _, err := s.Submit(ctx, alice, pim.Request{RequestType: pim.SelfActivate, PrincipalID: "bob", RoleDefinitionID: contributor, Scope: scope,
		Justification: "x"}); !errors.Is(err, pim.ErrForbidden) {
		t.Fatalf("activating for someone else: %v", err)
	}
	r, err := activate(s, alice, time.Hour, "fix payroll")
	if err != nil || r.Status != pim.StatusProvisioned || r.TargetID == "" || r.LinkedEligibilityID == "" {
		t.Fatalf("activation: %+v %v", r, err)
	}
	start := c.Now()
	if !grants(t, st, "alice", start) || !grants(t, st, "alice", start.Add(time.Hour-time.Nanosecond)) || grants(t, st, "alice", start.Add(time.Hour)) {
		t.Fatal("the activation is not in force for exactly its hour")
	}
	if _, err := activate(s, alice, time.Hour, "again"); !errors.Is(err, pim.ErrAlreadyActive) {
		t.Fatalf("a second activation: %v", err)
	}
	deactivate := func() (pim.Request, error) {
		return s.Submit(ctx, alice, pim.Request{RequestType: pim.SelfDeactivate, RoleDefinitionID: contributor, Scope: scope})
	}
	if _, err := deactivate(); !errors.Is(err, pim.ErrTooSoon) {
		t.Fatalf("deactivation within 5 minutes: %v", err)
	}
	// The hour passes: the engine stops honouring it at once; the sweep
	// removes it.
	c.Add(time.Hour)
	if grants(t, st, "alice", c.Now()) {
		t.Fatal("the role outlives its activation")
	}
	if _, expired, err := s.Sweep(ctx); err != nil || expired != 1 {
		t.Fatalf("sweep: %d %v", expired, err)
	}
	if objs, _ := st.List(ctx, rbac.Kind, store.ListOptions{}); len(objs) != 0 {
		t.Fatalf("expired assignments left: %d", len(objs))
	}
	// Activate again and end it after the grace.
	if _, err := activate(s, alice, 2*time.Hour, "more payroll"); err != nil {
		t.Fatal(err)
	}
	c.Add(6 * time.Minute)
	if r, err := deactivate(); err != nil || r.Status != pim.StatusRevoked {
		t.Fatalf("deactivation: %+v %v", r, err)
	}
	if grants(t, st, "alice", c.Now()) {
		t.Fatal("deactivated, still granted")
	}
	if _, err := deactivate(); !errors.Is(err, pim.ErrNotActive) {
		t.Fatalf("deactivating nothing: %v", err)
	}
	audited := map[string]int{}
	evs, err := st.ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		audited[ev.Action+" "+ev.Actor]++
	}
	if audited["pim.adminAssign admin"] != 1 || audited["pim.selfActivate alice"] != 2 || audited["pim.expire verity-pim"] != 1 ||
		audited["pim.selfDeactivate alice"] != 1 {
		t.Fatalf("audit log %v", audited)
	}
}

// TestApproval: with approval required, an activation waits for an
// approver; nobody approves their own request, nor does a non-approver;
// the approver justifies; the role is active from the approval for the
// whole length asked; an unanswered request times out.
func TestApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	s.Groups = func(id string) []string {
		if id == "bob" {
			return []string{"g-approvers"}
		}
		return nil
	}
	p := pim.DefaultPolicy()
	p.RequireApproval, p.Approvers = true, []string{"g-approvers", "alice"}
	if err := s.SetPolicy(ctx, "admin", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: contributor, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	eligible(t, s, "alice", 30)
	r, err := activate(s, alice, 2*time.Hour, "month end")
	if err != nil || r.Status != pim.StatusPendingApproval || grants(t, st, "alice", c.Now()) {
		t.Fatalf("pending: %+v %v", r, err)
	}
	if _, err := activate(s, alice, time.Hour, "again"); !errors.Is(err, pim.ErrPending) {
		t.Fatalf("a second request: %v", err)
	}
	if _, err := s.Decide(ctx, alice, r.ID, true, "me"); !errors.Is(err, pim.ErrOwnRequest) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := s.Decide(ctx, pim.Caller{ID: "carol"}, r.ID, true, "ok"); !errors.Is(err, pim.ErrNotApprover) {
		t.Fatalf("a non-approver: %v", err)
	}
	bob := pim.Caller{ID: "bob"}
	if _, err := s.Decide(ctx, bob, r.ID, true, ""); err == nil {
		t.Fatal("approved without a justification")
	}
	c.Add(30 * time.Minute)
	got, err := s.Decide(ctx, bob, r.ID, true, "ticket 4711 checked")
	if err != nil || got.Status != pim.StatusProvisioned || len(got.Approvals) != 1 || !got.ScheduleInfo.StartDateTime.Equal(c.Now()) {
		t.Fatalf("approved: %+v %v", got, err)
	}
	if !grants(t, st, "alice", c.Now()) || !grants(t, st, "alice", c.Now().Add(2*time.Hour-time.Second)) || grants(t, st, "alice", c.Now().Add(2*time.Hour)) {
		t.Fatal("the approved activation is not in force for its two hours from the approval")
	}
	if _, err := s.Decide(ctx, bob, r.ID, true, "twice"); !errors.Is(err, pim.ErrNotPending) {
		t.Fatalf("approved twice: %v", err)
	}
	// Denied, and timed out.
	c.Add(2 * time.Hour)
	r2, _ := activate(s, alice, time.Hour, "more")
	if d, err := s.Decide(ctx, bob, r2.ID, false, "not today"); err != nil || d.Status != pim.StatusDenied || grants(t, st, "alice", c.Now()) {
		t.Fatalf("denied: %+v %v", d, err)
	}
	r3, _ := activate(s, alice, time.Hour, "again")
	c.Add(25 * time.Hour)
	if timedOut, _, err := s.Sweep(ctx); err != nil || timedOut != 1 {
		t.Fatalf("sweep: %d %v", timedOut, err)
	}
	if got, _ := pim.GetRequest(ctx, st, r3.ID); got.Status != pim.StatusTimedOut {
		t.Fatalf("after the timeout: %+v", got)
	}
	if _, err := s.Decide(ctx, bob, r3.ID, true, "late"); !errors.Is(err, pim.ErrNotPending) {
		t.Fatalf("approved after the timeout: %v", err)
	}
	r4, _ := activate(s, alice, time.Hour, "one more")
	if got, err := s.Cancel(ctx, alice, r4.ID); err != nil || got.Status != pim.StatusCanceled {
		t.Fatalf("cancel: %+v %v", got, err)
	}
}

// TestEligibilityLifecycle: group eligibility, the role settings on an
// administrator's assignment, extension and renewal through approval,
// and removal ending what was activated from it.
func TestEligibilityLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	s.Groups = func(id string) []string {
		if id == "erin" {
			return []string{"g-payroll"}
		}
		return nil
	}
	if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: "g-payroll", RoleDefinitionID: contributor, Scope: scope}); err != nil {
		t.Fatalf("permanent group eligibility: %v", err)
	}
	erin := pim.Caller{ID: "erin", MFA: true}
	if _, err := activate(s, erin, time.Hour, "through the group"); err != nil {
		t.Fatalf("a group member activates: %v", err)
	}
	if _, err := s.Submit(ctx, alice, pim.Request{RequestType: pim.AdminAssign, PrincipalID: "alice", RoleDefinitionID: contributor, Scope: scope}); !errors.Is(err, pim.ErrForbidden) {
		t.Fatalf("a user assigns herself: %v", err)
	}
	p := pim.DefaultPolicy()
	p.EligibilityExpirationRequired, p.EligibilityMaxDuration = true, pim.Duration(30*24*time.Hour)
	if err := s.SetPolicy(ctx, "admin", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: contributor, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: "alice", RoleDefinitionID: contributor, Scope: scope}); err == nil {
		t.Fatal("a permanent eligibility where the settings require an end")
	}
	if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: "alice", RoleDefinitionID: contributor, Scope: scope,
		ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(31 * 24 * time.Hour)}}}); err == nil {
		t.Fatal("31 days where 30 are the most")
	}
	el := eligible(t, s, "alice", 20)
	// Extension: not before its last 14 days; then through an admin.
	extend := func(kind string) (pim.Request, error) {
		return s.Submit(ctx, alice, pim.Request{RequestType: kind, RoleDefinitionID: contributor, Scope: scope,
			Justification: "still on payroll", ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(10 * 24 * time.Hour)}}})
	}
	if _, err := extend(pim.SelfExtend); !errors.Is(err, pim.ErrNothingToExtend) {
		t.Fatalf("extension 20 days ahead: %v", err)
	}
	c.Add(10 * 24 * time.Hour)
	x, err := extend(pim.SelfExtend)
	if err != nil || x.Status != pim.StatusPendingApproval {
		t.Fatalf("extension: %+v %v", x, err)
	}
	if _, err := s.Decide(ctx, pim.Caller{ID: "bob"}, x.ID, true, "ok"); !errors.Is(err, pim.ErrNotApprover) {
		t.Fatalf("a non-admin approves an extension: %v", err)
	}
	if got, err := s.Decide(ctx, admin, x.ID, true, "ok"); err != nil || got.Status != pim.StatusProvisioned {
		t.Fatalf("extension approved: %+v %v", got, err)
	}
	els, _ := pim.Eligibilities(ctx, st, "alice")
	if len(els) != 1 || !els[0].EndDateTime.Equal(c.Now().Add(20*24*time.Hour)) {
		t.Fatalf("extended eligibility %+v", els)
	}
	// Renewal after it ended.
	c.Add(21 * 24 * time.Hour)
	if _, err := activate(s, alice, time.Hour, "after the end"); !errors.Is(err, pim.ErrNotEligible) {
		t.Fatalf("activation after the eligibility ended: %v", err)
	}
	rn, err := extend(pim.SelfRenew)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(ctx, admin, rn.ID, true, "renewed"); err != nil {
		t.Fatal(err)
	}
	if _, err := activate(s, alice, time.Hour, "renewed"); err != nil {
		t.Fatalf("activation after the renewal: %v", err)
	}
	// Removal ends the activation made from it.
	if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminRemove, PrincipalID: "alice", RoleDefinitionID: contributor, Scope: scope}); err != nil {
		t.Fatal(err)
	}
	if grants(t, st, "alice", c.Now()) {
		t.Fatal("the activation outlives the eligibility's removal")
	}
	_ = el
}
