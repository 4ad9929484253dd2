package pim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// who are the principals of the review tests, by GUID.
var who = struct {
	alice, bob, carol, dave, erin, frank string
	rita, ron, mallory                   string // rita reviews; ron through the group reviewers; mallory is nobody's reviewer
	buildBot                             string // a service principal
	root                                 string // the tenant's Owner at /
	payroll, nested, reviewers, admins   string // groups: payroll holds erin and nested (frank); admins (carol) is role-assignable
}{uid(1), uid(2), uid(3), uid(4), uid(5), uid(6), uid(7), uid(8), uid(9), uid(20), uid(30), uid(31), uid(32), uid(33), uid(10)}

func uid(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// reviewEnv is a tenant on a real store, with PIM on an injected clock
// and access reviews under the admin API's Owner rule.
type reviewEnv struct {
	t   *testing.T
	st  store.Store
	svc *pim.Service
	rv  *pim.Reviews
	c   *clock
}

func newReviewEnv(t *testing.T, st store.Store) *reviewEnv {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	svc := pim.New(st)
	svc.Now = c.Now
	svc.Groups = func(id string) []string {
		var groups []string
		err := st.View(context.Background(), func(ctx context.Context, r store.Reader, rev int64) error {
			dir, err := directory.Build(ctx, r, rev)
			if err == nil {
				groups = dir.TransitiveMemberOf(id)
			}
			return err
		})
		if err != nil {
			t.Error(err)
		}
		return groups
	}
	e := &reviewEnv{t: t, st: st, svc: svc, c: c}
	e.rv = pim.NewReviews(svc, ownerGuard)
	return e
}

// ownerGuard is the admin API's rule for deleting role assignments: an
// enabled Owner remains at / (decision.OwnerRemains, as internal/api
// wires it).
func ownerGuard(ctx context.Context, tx store.Reader, kind string) error {
	if kind != rbac.Kind {
		return nil
	}
	ok, err := decision.OwnerRemains(ctx, tx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the change would leave no enabled user with the Owner role at scope /")
	}
	return nil
}

// put writes objects in one transaction.
func (e *reviewEnv) put(objs ...store.Object) {
	e.t.Helper()
	if _, err := e.st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *reviewEnv) user(id, name string, created time.Time) store.Object {
	e.t.Helper()
	u := &directory.User{ID: id, UserPrincipalName: strings.ToLower(name) + "@contoso.com", DisplayName: name, CreatedDateTime: &created}
	u.Normalize()
	o, err := directory.Users.Object(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *reviewEnv) group(id, name string, roleAssignable bool, members ...string) store.Object {
	e.t.Helper()
	g := &directory.Group{GraphGroup: directory.GraphGroup{ID: id, DisplayName: name, IsAssignableToRole: &roleAssignable}, Members: members}
	g.Normalize()
	o, err := directory.Groups.Object(g)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *reviewEnv) servicePrincipal(id, name string) store.Object {
	e.t.Helper()
	sp := &directory.ServicePrincipal{ID: id, AppID: uid(900), DisplayName: name}
	sp.Normalize()
	o, err := directory.ServicePrincipals.Object(sp)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func (e *reviewEnv) assignment(id, principal, role, scope string, s schedule.Schedule) store.Object {
	e.t.Helper()
	a := rbac.Assignment{ID: id, PrincipalID: principal, RoleDefinitionID: role, Scope: scope, Schedule: s}
	a.Normalize()
	if err := a.Validate(); err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(a)
	return store.Object{Kind: rbac.Kind, ID: id, Body: b}
}

func (e *reviewEnv) directoryAssignment(id, principal, role string) store.Object {
	e.t.Helper()
	a := &directory.RoleAssignment{ID: id, PrincipalID: principal, RoleDefinitionID: role, DirectoryScopeID: "/"}
	a.Normalize()
	o, err := directory.RoleAssignments.Object(a)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// people writes the tenant's users, service principal and groups, all
// created a year before the clock, and root's Owner assignment at / (a
// tenant always has one; the admin API's rule keeps it so).
func (e *reviewEnv) people() {
	e.t.Helper()
	long := e.c.Now().AddDate(-1, 0, 0)
	e.put(e.user(who.alice, "Alice", long), e.user(who.bob, "Bob", long), e.user(who.carol, "Carol", long), e.user(who.dave, "Dave", long),
		e.user(who.erin, "Erin", long), e.user(who.frank, "Frank", long), e.user(who.rita, "Rita", long), e.user(who.ron, "Ron", long),
		e.user(who.mallory, "Mallory", long), e.servicePrincipal(who.buildBot, "build-bot"),
		e.group(who.nested, "Nested", false, who.frank), e.group(who.payroll, "Payroll", false, who.erin, who.nested), e.group(who.reviewers, "Reviewers", false, who.ron),
		e.group(who.admins, "Admins", true, who.carol), e.user(who.root, "Root", long),
		e.assignment(uid(100), who.root, "Owner", "/", schedule.Schedule{}))
}

// definition is a one-time review starting now, for 14 days.
func (e *reviewEnv) definition(scope pim.ReviewScope, mutate ...func(*pim.ReviewDefinition)) pim.ReviewDefinition {
	d := pim.ReviewDefinition{DisplayName: "Payroll access", Scope: scope, Reviewers: []string{who.rita, who.reviewers},
		Settings: pim.ReviewSettings{Recurrence: pim.Recurrence{Type: pim.RecurOnetime, StartDate: e.c.Now().Format(time.RFC3339)},
			InstanceDurationInDays: 14}}
	for _, m := range mutate {
		m(&d)
	}
	return d
}

func (e *reviewEnv) create(d pim.ReviewDefinition) pim.ReviewDefinition {
	e.t.Helper()
	out, err := e.rv.Create(context.Background(), pim.Identity{ID: "admin"}, d)
	if err != nil {
		e.t.Fatalf("create %q: %v", d.DisplayName, err)
	}
	return out
}

func (e *reviewEnv) sweep() pim.ReviewSweep {
	e.t.Helper()
	n, err := e.rv.Sweep(context.Background())
	if err != nil {
		e.t.Fatalf("sweep: %v", err)
	}
	return n
}

// instance is the definition's only (or latest) instance.
func (e *reviewEnv) instance(defID string) pim.ReviewInstance {
	e.t.Helper()
	insts, err := pim.ReviewInstances(context.Background(), e.st, defID)
	if err != nil || len(insts) == 0 {
		e.t.Fatalf("instances of %s: %v %v", defID, insts, err)
	}
	return insts[len(insts)-1]
}

func (e *reviewEnv) items(instanceID string) []pim.ReviewItem {
	e.t.Helper()
	items, _, err := pim.ReviewItems(context.Background(), e.st, instanceID, "", 100000, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return items
}

// item finds the instance's item of principal on assignment (or
// eligibility) id.
func (e *reviewEnv) item(instanceID, principal, assignment string) pim.ReviewItem {
	e.t.Helper()
	for _, it := range e.items(instanceID) {
		if it.Principal.ID == principal && it.AssignmentID == assignment {
			return it
		}
	}
	e.t.Fatalf("no item of %s on %s in %s", principal, assignment, instanceID)
	return pim.ReviewItem{}
}

func (e *reviewEnv) decide(who, itemID, decision, why string) error {
	_, err := e.rv.RecordDecision(context.Background(), pim.Identity{ID: who}, itemID, decision, why)
	return err
}

// authorized asks the decision engine, built from the store as every
// node builds it, whether principal may write at scope now.
func (e *reviewEnv) authorized(principal, scope string) bool {
	e.t.Helper()
	snap, err := decision.Build(context.Background(), e.st)
	if err != nil {
		e.t.Fatal(err)
	}
	var d rbac.Decision
	if err := snap.Authorize(principal, "Microsoft.Web/sites/write", scope, e.c.Now(), &d); err != nil {
		e.t.Fatal(err)
	}
	return d.Allowed
}

func (e *reviewEnv) exists(kind, id string) bool {
	e.t.Helper()
	_, err := e.st.Get(context.Background(), kind, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.t.Fatal(err)
	}
	return err == nil
}

// audited counts the audit records by "action actor".
func (e *reviewEnv) audited() map[string]int {
	e.t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int{}
	for _, ev := range evs {
		if strings.HasPrefix(ev.Action, "accessReview.") {
			out[ev.Action+" "+ev.Actor]++
		}
	}
	return out
}

const payrollScope = "/apps/payroll"

// TestReviewSnapshot: an instance's items are the assignments in force
// at its start under the scope — direct, through a group (nested too,
// with the group itself), a PIM activation (time-bound, Activated), the
// eligibility it came from, a service principal — and not those outside
// the scope or ended; filters by role and principal type narrow them;
// directory roles held by a role-assignable group are reviewed as the
// group's.
func TestReviewSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	yesterday, past := e.c.Now().Add(-24*time.Hour), e.c.Now().Add(-48*time.Hour)
	e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(102), who.payroll, "Reader", payrollScope+"/reports", schedule.Schedule{}),
		e.assignment(uid(103), who.bob, "Contributor", "/apps/other", schedule.Schedule{}),
		e.assignment(uid(104), who.alice, "Owner", payrollScope, schedule.Schedule{StartDateTime: &past, EndDateTime: &yesterday}),
		e.assignment(uid(105), who.buildBot, "Reader", payrollScope, schedule.Schedule{}),
		e.directoryAssignment(uid(106), who.alice, "62e90394-69f5-4237-9190-012177145e10"),
		e.directoryAssignment(uid(107), who.admins, "62e90394-69f5-4237-9190-012177145e10"))
	el, err := e.svc.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: who.dave, RoleDefinitionID: contributor, Scope: payrollScope})
	if err != nil {
		t.Fatal(err)
	}
	act, err := e.svc.Submit(ctx, pim.Caller{ID: who.dave, MFA: true}, pim.Request{RequestType: pim.SelfActivate, RoleDefinitionID: contributor,
		Scope: payrollScope, Justification: "month end"})
	if err != nil {
		t.Fatal(err)
	}
	all := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope, IncludeEligible: true}))
	narrow := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope, RoleDefinitionIDs: []string{"Contributor"},
		PrincipalTypes: []string{pim.PrincipalUser}}))
	dir := e.create(e.definition(pim.ReviewScope{RoleKind: pim.RoleKindDirectory, RoleDefinitionIDs: []string{"Global Administrator"}}))
	if all.Status != pim.ReviewNotStarted || e.instance(all.ID).Status != pim.ReviewNotStarted {
		t.Fatalf("before the sweep: %s %+v", all.Status, e.instance(all.ID))
	}
	if n := e.sweep(); n.Started != 3 {
		t.Fatalf("sweep %+v", n)
	}

	type row struct{ principal, typ, assignment, via, state, assignmentType string }
	rows := func(defID string) []row {
		var out []row
		for _, it := range e.items(e.instance(defID).ID) {
			via := it.Via
			if it.ViaGroup != nil {
				via += ":" + it.ViaGroup.ID
			}
			out = append(out, row{it.Principal.ID, it.Principal.Type, it.AssignmentID, via, it.AssignmentState, it.AssignmentType})
		}
		sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
		return out
	}
	want := []row{
		{who.alice, pim.PrincipalUser, uid(101), "direct", pim.StateActive, ""},
		{who.buildBot, pim.PrincipalServicePrincipal, uid(105), "direct", pim.StateActive, ""},
		{who.dave, pim.PrincipalUser, act.TargetID, "direct", pim.StateActive, schedule.Activated},
		{who.dave, pim.PrincipalUser, el.TargetID, "direct", pim.StateEligible, ""},
		{who.erin, pim.PrincipalUser, uid(102), "group:" + who.payroll, pim.StateActive, ""},
		{who.frank, pim.PrincipalUser, uid(102), "group:" + who.payroll, pim.StateActive, ""},
		{who.payroll, pim.PrincipalGroup, uid(102), "direct", pim.StateActive, ""},
	}
	sort.Slice(want, func(i, j int) bool { return fmt.Sprint(want[i]) < fmt.Sprint(want[j]) })
	if got := rows(all.ID); !slices.Equal(got, want) {
		t.Errorf("items\n got %v\nwant %v", got, want)
	}
	inst := e.instance(all.ID)
	activation := e.item(inst.ID, who.dave, act.TargetID)
	if !activation.TimeBound || activation.EndDateTime == nil || !activation.EndDateTime.Equal(e.c.Now().Add(8*time.Hour)) ||
		activation.Role.DisplayName != "Contributor" || activation.Principal.DisplayName != "Dave" || activation.Decision != pim.DecisionNotReviewed {
		t.Errorf("the activation's item %+v", activation)
	}
	if inst.Status != pim.ReviewInProgress || inst.Summary == nil || inst.Summary.Items != 7 || inst.SnapshotRevision == 0 {
		t.Errorf("instance %+v", inst)
	}
	wantNarrow := []row{{who.alice, pim.PrincipalUser, uid(101), "direct", pim.StateActive, ""}, {who.dave, pim.PrincipalUser, act.TargetID, "direct", pim.StateActive, schedule.Activated}}
	if got := rows(narrow.ID); !slices.Equal(got, wantNarrow) {
		t.Errorf("filtered items\n got %v\nwant %v", got, wantNarrow)
	}
	wantDir := []row{{who.alice, pim.PrincipalUser, uid(106), "direct", pim.StateActive, ""}, {who.admins, pim.PrincipalGroup, uid(107), "direct", pim.StateActive, ""}}
	sort.Slice(wantDir, func(i, j int) bool { return fmt.Sprint(wantDir[i]) < fmt.Sprint(wantDir[j]) })
	if got := rows(dir.ID); !slices.Equal(got, wantDir) {
		t.Errorf("directory role items\n got %v\nwant %v", got, wantDir)
	}
	// Assignments made after the start are not in the instance.
	e.put(e.assignment(uid(108), who.carol, "Contributor", payrollScope, schedule.Schedule{}))
	e.sweep()
	if got := rows(all.ID); len(got) != 7 {
		t.Errorf("the snapshot changed after the start: %v", got)
	}
	if got, err := pim.GetReview(ctx, e.st, all.ID, e.c.Now()); err != nil || got.Status != pim.ReviewInProgress {
		t.Errorf("definition status %q %v", got.Status, err)
	}
}

// TestReviewRecurrence: a weekly review of three occurrences runs each
// for its five days, the next scheduled when one completes; an
// occurrence whose whole window passes while no node sweeps is stopped,
// not started late; after the last the definition is Completed. An
// administrator can skip an occurrence that has not started.
func TestReviewRecurrence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}))
	t0 := e.c.Now()
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.Recurrence = pim.Recurrence{Type: pim.RecurWeekly, StartDate: "2026-11-27", NumberOfOccurrences: 4}
		d.Settings.InstanceDurationInDays = 5
	}))
	// 2026-11-27 at midnight: the first window is open; it starts now.
	if n := e.sweep(); n.Started != 1 || n.Scheduled != 0 {
		t.Fatalf("first sweep %+v", n)
	}
	first := e.instance(d.ID)
	if !first.StartDateTime.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) || !first.EndDateTime.Equal(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("first instance %+v", first)
	}
	e.c.Add(first.EndDateTime.Sub(t0))
	if n := e.sweep(); n.Completed != 1 || n.Scheduled != 1 {
		t.Fatalf("sweep at the first end %+v", n)
	}
	second := e.instance(d.ID)
	if second.Occurrence != 1 || second.Status != pim.ReviewNotStarted || !second.StartDateTime.Equal(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("second instance %+v", second)
	}
	// The administrator skips it; the third is scheduled.
	if got, err := e.rv.Stop(ctx, pim.Identity{ID: "admin"}, second.ID); err != nil || got.Status != pim.ReviewStopped {
		t.Fatalf("skip: %+v %v", got, err)
	}
	if n := e.sweep(); n.Scheduled != 1 {
		t.Fatalf("after the skip %+v", n)
	}
	third := e.instance(d.ID)
	if third.Occurrence != 2 || !third.StartDateTime.Equal(time.Date(2026, 12, 11, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("third instance %+v", third)
	}
	// No node runs through the third's whole window.
	e.c.Add(third.EndDateTime.Sub(e.c.Now()) + time.Hour)
	if n := e.sweep(); n.Missed != 1 || n.Started != 0 || n.Scheduled != 1 {
		t.Fatalf("after the missed window %+v", n)
	}
	if got, _ := pim.GetReviewInstance(ctx, e.st, third.ID); got.Status != pim.ReviewStopped || got.StoppedReason == "" || got.Summary != nil {
		t.Fatalf("the missed instance %+v", got)
	}
	last := e.instance(d.ID)
	if last.Occurrence != 3 {
		t.Fatalf("last instance %+v", last)
	}
	e.c.Add(last.StartDateTime.Sub(e.c.Now()))
	if n := e.sweep(); n.Started != 1 {
		t.Fatalf("the last start %+v", n)
	}
	if got, _ := pim.GetReview(ctx, e.st, d.ID, e.c.Now()); got.Status != pim.ReviewInProgress {
		t.Fatalf("during the last: %s", got.Status)
	}
	e.c.Add(5 * 24 * time.Hour)
	if n := e.sweep(); n.Completed != 1 || n.Scheduled != 0 {
		t.Fatalf("the last end %+v", n)
	}
	if got, _ := pim.GetReview(ctx, e.st, d.ID, e.c.Now()); got.Status != pim.ReviewCompleted {
		t.Fatalf("after the last: %s", got.Status)
	}
	if insts, _ := pim.ReviewInstances(ctx, e.st, d.ID); len(insts) != 4 {
		t.Fatalf("instances %+v", insts)
	}
	if n := e.sweep(); n != (pim.ReviewSweep{}) {
		t.Fatalf("a sweep with nothing to do did %+v", n)
	}
}

// TestReviewReviewers: only a listed reviewer — or a member of a listed
// group — decides, never about their own access (nor a group's they are
// in); approval needs a justification when the settings say so; a
// decision can change until the end and not after. In a self-review each
// user decides about their own access, the fallback reviewers about a
// service principal's.
func TestReviewReviewers(t *testing.T) {
	t.Parallel()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(102), who.rita, "Reader", payrollScope, schedule.Schedule{}),
		e.assignment(uid(103), who.reviewers, "Reader", payrollScope, schedule.Schedule{}),
		e.assignment(uid(104), who.buildBot, "Reader", payrollScope, schedule.Schedule{}))
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope, PrincipalTypes: []string{pim.PrincipalUser, pim.PrincipalGroup, pim.PrincipalServicePrincipal}},
		func(d *pim.ReviewDefinition) { d.Settings.JustificationRequiredOnApproval = true }))
	self := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Reviewers, d.SelfReview, d.FallbackReviewers = nil, true, []string{who.mallory}
	}))
	e.sweep()
	inst := e.instance(d.ID)
	aliceItem, ritaItem := e.item(inst.ID, who.alice, uid(101)), e.item(inst.ID, who.rita, uid(102))
	groupItem, ronItem := e.item(inst.ID, who.reviewers, uid(103)), e.item(inst.ID, who.ron, uid(103))
	for _, c := range []struct {
		name, who, item, decision, why string
		want                           error
	}{
		{"not a reviewer", who.mallory, aliceItem.ID, pim.DecisionDeny, "", pim.ErrNotReviewer},
		{"the principal herself", who.alice, aliceItem.ID, pim.DecisionApprove, "mine", pim.ErrNotReviewer},
		{"a reviewer about her own access", who.rita, ritaItem.ID, pim.DecisionApprove, "I need it", pim.ErrOwnAccess},
		{"a reviewer about his group", who.ron, groupItem.ID, pim.DecisionApprove, "we need it", pim.ErrOwnAccess},
		{"a reviewer about his own access through the group", who.ron, ronItem.ID, pim.DecisionApprove, "I need it", pim.ErrOwnAccess},
		{"approval without a justification", who.rita, aliceItem.ID, pim.DecisionApprove, " ", &pim.Error{Code: "InvalidAccessReview"}},
		{"an unknown decision", who.rita, aliceItem.ID, "Maybe", "", &pim.Error{Code: "InvalidAccessReview"}},
		{"an unknown item", who.rita, inst.ID + ".0000000000000000", pim.DecisionDeny, "", pim.ErrReviewNotFound},
		{"a listed reviewer", who.rita, aliceItem.ID, pim.DecisionApprove, "still on payroll", nil},
		{"a member of a listed group", who.ron, ritaItem.ID, pim.DecisionDeny, "", nil},
		{"a reviewer about the group she is not in", who.rita, groupItem.ID, pim.DecisionDontKnow, "", nil},
		{"a decision changed", who.rita, aliceItem.ID, pim.DecisionDeny, "moved to sales", nil},
	} {
		err := e.decide(c.who, c.item, c.decision, c.why)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	if got := e.item(inst.ID, who.alice, uid(101)); got.Decision != pim.DecisionDeny || got.Justification != "moved to sales" ||
		got.ReviewedBy == nil || got.ReviewedBy.ID != who.rita || got.ReviewedDateTime == nil {
		t.Errorf("alice's item %+v", got)
	}
	if err := e.decide(who.rita, aliceItem.ID, pim.DecisionApprove, ""); err == nil || !strings.Contains(err.Error(), "justification") {
		t.Errorf("the error names no field: %v", err)
	}

	sinst := e.instance(self.ID)
	for _, c := range []struct {
		name, who, item string
		want            error
	}{
		{"alice about her own access", who.alice, e.item(sinst.ID, who.alice, uid(101)).ID, nil},
		{"bob about alice's", who.bob, e.item(sinst.ID, who.alice, uid(101)).ID, pim.ErrNotReviewer},
		{"the fallback about alice's", who.mallory, e.item(sinst.ID, who.alice, uid(101)).ID, pim.ErrNotReviewer},
		{"the fallback about a service principal's", who.mallory, e.item(sinst.ID, who.buildBot, uid(104)).ID, nil},
		{"a user about a service principal's", who.alice, e.item(sinst.ID, who.buildBot, uid(104)).ID, pim.ErrNotReviewer},
	} {
		err := e.decide(c.who, c.item, pim.DecisionApprove, "needed")
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("self-review, %s: %v; want %v", c.name, err, c.want)
		}
	}
	// The end closes every decision.
	e.c.Add(14 * 24 * time.Hour)
	if err := e.decide(who.rita, aliceItem.ID, pim.DecisionApprove, "too late"); !errors.Is(err, pim.ErrReviewNotActive) {
		t.Errorf("after the end: %v", err)
	}
	e.sweep()
	if err := e.decide(who.rita, aliceItem.ID, pim.DecisionApprove, "too late"); !errors.Is(err, pim.ErrReviewNotActive) {
		t.Errorf("after completion: %v", err)
	}
	if got := e.audited(); got["accessReview.recordDecision "+who.rita] != 3 || got["accessReview.recordDecision "+who.ron] != 1 ||
		got["accessReview.recordDecision "+who.mallory] != 1 || got["accessReview.recordDecision "+who.alice] != 1 {
		t.Errorf("decisions audited %v", got)
	}
}

// TestReviewLifecycle, on both engines: a default decision of Deny
// applied at the end removes the assignment nobody approved, and the
// decision engine then refuses that principal; the approved one keeps
// hers. Sweeping again — or from a second node at the same time —
// changes nothing and records nothing. Every change is in the audit log.
func TestReviewLifecycle(t *testing.T) {
	t.Parallel()
	for _, eng := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(eng.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := eng.open(t)
			e := newReviewEnv(t, st)
			e.people()
			e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}),
				e.assignment(uid(102), who.bob, "Contributor", payrollScope, schedule.Schedule{}))
			d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
				d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision, d.Settings.AutoApplyDecisionsEnabled = true, pim.DecisionDeny, true
			}))
			// Two nodes sweep at once: both read the instance NotStarted and
			// snapshot its items (the barrier holds each snapshot until both
			// have begun); one starts it, the other finds it started.
			gate := &barrier{Store: st, waiting: 2, release: make(chan struct{})}
			sweeps := make([]pim.ReviewSweep, 2)
			var wg sync.WaitGroup
			for i := range sweeps {
				svc := pim.New(gate)
				svc.Now = e.c.Now
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, err := pim.NewReviews(svc, ownerGuard).Sweep(ctx)
					if err != nil {
						t.Error(err)
					}
					sweeps[i] = n
				}()
			}
			wg.Wait()
			if sweeps[0].Started+sweeps[1].Started != 1 {
				t.Fatalf("sweeps %+v", sweeps)
			}
			inst := e.instance(d.ID)
			if items := e.items(inst.ID); len(items) != 2 {
				t.Fatalf("items %+v", items)
			}
			if err := e.decide(who.rita, e.item(inst.ID, who.bob, uid(102)).ID, pim.DecisionApprove, "runs payroll"); err != nil {
				t.Fatal(err)
			}
			if !e.authorized(who.alice, payrollScope) || !e.authorized(who.bob, payrollScope) {
				t.Fatal("before the end, both hold the role")
			}
			e.c.Add(14 * 24 * time.Hour)
			if n := e.sweep(); n.Completed != 1 || n.Applied != 1 {
				t.Fatalf("sweep at the end %+v", n)
			}
			aliceItem := e.item(inst.ID, who.alice, uid(101))
			if aliceItem.Decision != pim.DecisionDeny || aliceItem.ReviewedBy.ID != pim.ReviewActor || aliceItem.ApplyResult != pim.ApplyApplied ||
				aliceItem.AppliedDateTime == nil {
				t.Fatalf("alice's item %+v", aliceItem)
			}
			if bobItem := e.item(inst.ID, who.bob, uid(102)); bobItem.Decision != pim.DecisionApprove || bobItem.ApplyResult != pim.ApplyNotApplied {
				t.Fatalf("bob's item %+v", bobItem)
			}
			if e.exists(rbac.Kind, uid(101)) || !e.exists(rbac.Kind, uid(102)) {
				t.Fatal("the denied assignment is there, or the approved one is gone")
			}
			if e.authorized(who.alice, payrollScope) || !e.authorized(who.bob, payrollScope) {
				t.Fatal("the decision engine still lets alice in, or no longer bob")
			}
			got := e.instance(d.ID)
			if got.Status != pim.ReviewApplied || got.Summary == nil || *got.Summary != (pim.ReviewStats{Items: 2, Approved: 1, Denied: 1, Applied: 1}) {
				t.Fatalf("instance %+v %+v", got, got.Summary)
			}
			before := e.audited()
			want := map[string]int{"accessReview.createDefinition admin": 1, "accessReview.start " + pim.ReviewActor: 1,
				"accessReview.recordDecision " + who.rita: 1, "accessReview.complete " + pim.ReviewActor: 1,
				"accessReview.applyDecision " + pim.ReviewActor: 1, "accessReview.apply " + pim.ReviewActor: 1}
			if fmt.Sprint(before) != fmt.Sprint(want) {
				t.Fatalf("audit log %v; want %v", before, want)
			}
			if n := e.sweep(); n != (pim.ReviewSweep{}) {
				t.Fatalf("a second sweep did %+v", n)
			}
			if after := e.audited(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a second sweep recorded %v", after)
			}
			evs, err := st.ListAudit(ctx, store.AuditQuery{Action: "accessReview.applyDecision", Limit: 10})
			if err != nil || len(evs) != 1 || evs[0].Target != "/accessReviews/decisions/"+aliceItem.ID || !strings.Contains(string(evs[0].Details), uid(101)) {
				t.Fatalf("the removal's audit record %+v %v", evs, err)
			}
		})
	}
}

// TestReviewRecommendations: with recommendations, a user who signed in
// within 30 days is recommended Approve, one whose last sign-in is older
// Deny, one who never signed in Deny — unless created within the 30 days,
// or the sign-in log does not reach back that far: then nothing. A
// default decision of Recommendation takes them at the end, and leaves
// the rest unreviewed.
func TestReviewRecommendations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if signin.AuditAction != "signIn" {
		t.Fatalf("the sign-in log's action is %q; recommendations read signIn", signin.AuditAction)
	}
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	now := e.c.Now()
	signIn := func(who string, at time.Time, result string) {
		if _, err := e.st.AppendAudit(ctx, store.AuditEvent{Time: at, Actor: who, Action: signin.AuditAction, Target: "/applications/x", Result: result,
			Details: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	signIn(who.mallory, now.AddDate(0, 0, -60), "success") // the log reaches back 60 days
	signIn(who.alice, now.AddDate(0, 0, -3), "success")
	signIn(who.bob, now.AddDate(0, 0, -40), "success")
	signIn(who.bob, now.AddDate(0, 0, -2), "failure")
	e.people()
	e.put(e.user(who.carol, "Carol", now.AddDate(0, 0, -10))) // new
	for i, p := range []string{who.alice, who.bob, who.carol, who.dave, who.payroll} {
		e.put(e.assignment(uid(101+i), p, "Reader", payrollScope, schedule.Schedule{}))
	}
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Settings.RecommendationsEnabled, d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision = true, true, "Recommendation"
	}))
	e.sweep()
	inst := e.instance(d.ID)
	for _, c := range []struct {
		who, assignment, want string
		last                  *time.Time
	}{
		{who.alice, uid(101), pim.RecommendApprove, ptr(now.AddDate(0, 0, -3))},
		{who.bob, uid(102), pim.RecommendDeny, ptr(now.AddDate(0, 0, -40))},
		{who.carol, uid(103), pim.RecommendNotAvailable, nil},
		{who.dave, uid(104), pim.RecommendDeny, nil},
		{who.payroll, uid(105), pim.RecommendNotAvailable, nil},
		{who.erin, uid(105), pim.RecommendDeny, nil}, // through who.payroll
	} {
		it := e.item(inst.ID, c.who, c.assignment)
		if it.Recommendation != c.want || (c.last == nil) != (it.LastSignInDateTime == nil) || c.last != nil && !c.last.Equal(*it.LastSignInDateTime) {
			t.Errorf("%s: recommendation %q last sign-in %v; want %q %v", it.Principal.DisplayName, it.Recommendation, it.LastSignInDateTime, c.want, c.last)
		}
	}
	e.c.Add(14 * 24 * time.Hour)
	e.sweep()
	for who, want := range map[string]string{who.alice: pim.DecisionApprove, who.bob: pim.DecisionDeny, who.carol: pim.DecisionNotReviewed, who.dave: pim.DecisionDeny} {
		for _, it := range e.items(inst.ID) {
			if it.Principal.ID == who && it.Decision != want {
				t.Errorf("%s's decision at the end %q; want %q", it.Principal.DisplayName, it.Decision, want)
			}
		}
	}
	// Without auto-apply nothing was removed.
	if !e.exists(rbac.Kind, uid(102)) || !e.exists(rbac.Kind, uid(104)) {
		t.Error("a recommendation was applied without autoApply")
	}

	// A log younger than 30 days cannot tell who has been away.
	young := newReviewEnv(t, storetest.OpenSQLite(t))
	young.people()
	young.put(young.assignment(uid(101), who.dave, "Reader", payrollScope, schedule.Schedule{}))
	yd := young.create(young.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) { d.Settings.RecommendationsEnabled = true }))
	young.sweep()
	if it := young.item(young.instance(yd.ID).ID, who.dave, uid(101)); it.Recommendation != pim.RecommendNotAvailable {
		t.Errorf("a 1-day log recommends %q for dave", it.Recommendation)
	}
}

func ptr[T any](v T) *T { return &v }

// barrier is a real store whose first waiting read views wait for each
// other, so that that many sweeps snapshot the same instance at once.
type barrier struct {
	store.Store
	mu      sync.Mutex
	waiting int
	release chan struct{}
}

func (b *barrier) View(ctx context.Context, fn func(ctx context.Context, r store.Reader, revision int64) error) error {
	b.mu.Lock()
	if b.waiting > 0 {
		b.waiting--
		if b.waiting == 0 {
			close(b.release)
		}
	}
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Store.View(ctx, fn)
}

// TestReviewApplyByAdmin: without auto-apply nothing is removed at the
// end until an administrator applies the instance; then a denied
// eligibility goes with the activation made from it, an assignment
// removed meanwhile counts as applied, one changed meanwhile is left
// alone, and a role held through a group is not taken from the group.
// Applying again changes nothing.
func TestReviewApplyByAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(102), who.bob, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(103), who.carol, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(104), who.payroll, "Reader", payrollScope, schedule.Schedule{}))
	el, err := e.svc.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: who.dave, RoleDefinitionID: contributor, Scope: payrollScope})
	if err != nil {
		t.Fatal(err)
	}
	act, err := e.svc.Submit(ctx, pim.Caller{ID: who.dave, MFA: true}, pim.Request{RequestType: pim.SelfActivate, RoleDefinitionID: contributor,
		Scope: payrollScope, Justification: "month end", ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(8 * time.Hour)}}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope, IncludeEligible: true, PrincipalTypes: []string{pim.PrincipalUser}},
		func(d *pim.ReviewDefinition) { d.Settings.InstanceDurationInDays = 1 }))
	e.sweep()
	inst := e.instance(d.ID)
	deny := func(principal, assignment string) {
		t.Helper()
		if err := e.decide(who.rita, e.item(inst.ID, principal, assignment).ID, pim.DecisionDeny, "left the team"); err != nil {
			t.Fatal(err)
		}
	}
	deny(who.alice, uid(101))
	deny(who.bob, uid(102))
	deny(who.carol, uid(103))
	deny(who.erin, uid(104))
	deny(who.dave, el.TargetID)
	if _, err := e.rv.Apply(ctx, pim.Identity{ID: "admin"}, inst.ID); !errors.Is(err, pim.ErrReviewNotCompleted) {
		t.Fatalf("apply while in progress: %v", err)
	}
	// Meanwhile bob's assignment is removed and carol's changed.
	if _, err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Delete(ctx, rbac.Kind, uid(102)) }); err != nil {
		t.Fatal(err)
	}
	e.put(e.assignment(uid(103), who.carol, "Contributor", payrollScope, schedule.Schedule{AssignmentType: schedule.Assigned}))
	e.c.Add(24 * time.Hour)
	if n := e.sweep(); n.Completed != 1 || n.Applied != 0 {
		t.Fatalf("sweep at the end %+v", n)
	}
	if !e.exists(rbac.Kind, uid(101)) || !e.exists(pim.EligibilityKind, el.TargetID) || e.instance(d.ID).Status != pim.ReviewCompleted {
		t.Fatal("a denial was applied without autoApply")
	}
	got, err := e.rv.Apply(ctx, pim.Identity{ID: "admin", DisplayName: "Admin"}, inst.ID)
	if err != nil || got.Status != pim.ReviewApplied || got.AppliedBy == nil || got.AppliedBy.ID != "admin" {
		t.Fatalf("apply: %+v %v", got, err)
	}
	for _, c := range []struct {
		who, assignment, result, description string
	}{
		{who.alice, uid(101), pim.ApplyApplied, "was removed"},
		{who.bob, uid(102), pim.ApplyApplied, "already removed"},
		{who.carol, uid(103), pim.ApplyFailed, "changed after the review started"},
		{who.erin, uid(104), pim.ApplyFailed, "held through group " + who.payroll},
		{who.dave, el.TargetID, pim.ApplyApplied, "eligibility was removed"},
	} {
		it := e.item(inst.ID, c.who, c.assignment)
		if it.ApplyResult != c.result || !strings.Contains(it.ApplyDescription, c.description) || it.AppliedBy == nil || it.AppliedBy.ID != "admin" {
			t.Errorf("%s: %s %q; want %s %q", it.Principal.DisplayName, it.ApplyResult, it.ApplyDescription, c.result, c.description)
		}
	}
	if e.exists(rbac.Kind, uid(101)) || !e.exists(rbac.Kind, uid(103)) || !e.exists(rbac.Kind, uid(104)) {
		t.Error("alice's assignment stayed, or carol's or the group's went")
	}
	if e.exists(pim.EligibilityKind, el.TargetID) || e.exists(rbac.Kind, act.TargetID) {
		t.Error("dave's eligibility or the activation made from it stayed")
	}
	before := e.audited()
	if again, err := e.rv.Apply(ctx, pim.Identity{ID: "admin"}, inst.ID); err != nil || again.Status != pim.ReviewApplied {
		t.Fatalf("apply again: %+v %v", again, err)
	}
	if after := e.audited(); fmt.Sprint(after) != fmt.Sprint(before) || before["accessReview.applyDecision admin"] != 5 || before["accessReview.apply admin"] != 1 {
		t.Fatalf("audit log %v then %v", before, after)
	}
}

// TestReviewLastOwner: denials that would leave no enabled Owner at /
// are refused the way the admin API refuses such a delete: the first
// Owner's removal goes through, the last one's is recorded as Failed
// with the reason, and the assignment stays.
func TestReviewLastOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Owner", "/", schedule.Schedule{}), e.assignment(uid(102), who.bob, "Owner", "/", schedule.Schedule{}))
	if _, err := e.st.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Delete(ctx, rbac.Kind, uid(100)) }); err != nil {
		t.Fatal(err)
	}
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: "/", RoleDefinitionIDs: []string{"Owner"}}, func(d *pim.ReviewDefinition) {
		d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision = true, pim.DecisionDeny
	}))
	e.sweep()
	inst := e.instance(d.ID)
	if got, err := e.rv.Stop(ctx, pim.Identity{ID: "admin"}, inst.ID); err != nil || got.Status != pim.ReviewCompleted || got.StoppedBy == nil ||
		!got.EndDateTime.Equal(e.c.Now()) {
		t.Fatalf("stop: %+v %v", got, err)
	}
	if _, err := e.rv.Stop(ctx, pim.Identity{ID: "admin"}, inst.ID); !errors.Is(err, pim.ErrReviewNotActive) {
		t.Fatalf("stop twice: %v", err)
	}
	got, err := e.rv.Apply(ctx, pim.Identity{ID: "admin"}, inst.ID)
	if err != nil || got.Status != pim.ReviewApplied || got.Summary.Applied != 1 || got.Summary.Failed != 1 {
		t.Fatalf("apply: %+v %v", got.Summary, err)
	}
	results := map[string]int{}
	for _, it := range e.items(inst.ID) {
		results[it.ApplyResult]++
		if it.ApplyResult == pim.ApplyFailed && !strings.Contains(it.ApplyDescription, "no enabled user with the Owner role") {
			t.Errorf("the refusal says %q", it.ApplyDescription)
		}
	}
	if results[pim.ApplyApplied] != 1 || results[pim.ApplyFailed] != 1 {
		t.Fatalf("results %v", results)
	}
	if ok, err := decision.OwnerRemains(ctx, e.st); err != nil || !ok {
		t.Fatalf("no Owner remains: %v", err)
	}
	if evs, err := e.st.ListAudit(ctx, store.AuditQuery{Action: "accessReview.applyDecision", Result: "failure", Limit: 10}); err != nil || len(evs) != 1 {
		t.Fatalf("the refusal's audit record: %d %v", len(evs), err)
	}
}

// TestReviewDefinitionInvalid: a definition that cannot run is refused
// with the property at fault.
func TestReviewDefinitionInvalid(t *testing.T) {
	t.Parallel()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	for _, c := range []struct {
		name   string
		mutate func(*pim.ReviewDefinition)
		field  string
	}{
		{"no name", func(d *pim.ReviewDefinition) { d.DisplayName = " " }, "displayName"},
		{"a long name", func(d *pim.ReviewDefinition) { d.DisplayName = strings.Repeat("x", 257) }, "displayName"},
		{"a bad role kind", func(d *pim.ReviewDefinition) { d.Scope.RoleKind = "azure" }, "scope.roleKind"},
		{"a relative scope", func(d *pim.ReviewDefinition) { d.Scope.ResourceScope = "apps/x" }, "scope.resourceScope"},
		{"an unknown role", func(d *pim.ReviewDefinition) { d.Scope.RoleDefinitionIDs = []string{"Reader", "Chief Wizard"} }, "scope.roleDefinitionIds[1]"},
		{"a directory role that is not", func(d *pim.ReviewDefinition) {
			d.Scope.RoleKind, d.Scope.RoleDefinitionIDs = pim.RoleKindDirectory, []string{"Contributor"}
		}, "scope.roleDefinitionIds[0]"},
		{"an unknown principal type", func(d *pim.ReviewDefinition) { d.Scope.PrincipalTypes = []string{"device"} }, "scope.principalTypes[0]"},
		{"no reviewers", func(d *pim.ReviewDefinition) { d.Reviewers = nil }, "reviewers"},
		{"reviewers and self-review", func(d *pim.ReviewDefinition) { d.SelfReview = true }, "reviewers"},
		{"a fallback without self-review", func(d *pim.ReviewDefinition) { d.FallbackReviewers = []string{who.rita} }, "fallbackReviewers"},
		{"too many reviewers", func(d *pim.ReviewDefinition) {
			d.Reviewers = nil
			for i := range 26 {
				d.Reviewers = append(d.Reviewers, uid(500+i))
			}
		}, "reviewers"},
		{"a reviewer twice", func(d *pim.ReviewDefinition) { d.Reviewers = []string{who.rita, strings.ToUpper(who.rita)} }, "reviewers[1]"},
		{"a reviewer who is not", func(d *pim.ReviewDefinition) { d.Reviewers = []string{who.rita, uid(999)} }, "reviewers[1]"},
		{"a service principal as reviewer", func(d *pim.ReviewDefinition) { d.Reviewers = []string{who.buildBot} }, "reviewers[0]"},
		{"an unknown recurrence", func(d *pim.ReviewDefinition) { d.Settings.Recurrence.Type = "daily" }, "settings.recurrence.type"},
		{"no start", func(d *pim.ReviewDefinition) { d.Settings.Recurrence.StartDate = "" }, "settings.recurrence.startDate"},
		{"a bad start", func(d *pim.ReviewDefinition) { d.Settings.Recurrence.StartDate = "27/11/2026" }, "settings.recurrence.startDate"},
		{"an end and a count", func(d *pim.ReviewDefinition) {
			d.Settings.Recurrence = pim.Recurrence{Type: pim.RecurMonthly, StartDate: "2026-12-01", EndDate: "2027-12-01", NumberOfOccurrences: 3}
		}, "settings.recurrence.endDate"},
		{"an end before the start", func(d *pim.ReviewDefinition) {
			d.Settings.Recurrence = pim.Recurrence{Type: pim.RecurMonthly, StartDate: "2026-12-01", EndDate: "2026-11-01"}
		}, "settings.recurrence.endDate"},
		{"a week-long instance every week plus a day", func(d *pim.ReviewDefinition) {
			d.Settings.Recurrence.Type, d.Settings.InstanceDurationInDays = pim.RecurWeekly, 8
		}, "settings.instanceDurationInDays"},
		{"no duration", func(d *pim.ReviewDefinition) { d.Settings.InstanceDurationInDays = 0 }, "settings.instanceDurationInDays"},
		{"an unknown default", func(d *pim.ReviewDefinition) {
			d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision = true, "Maybe"
		}, "settings.defaultDecision"},
		{"a recommendation default without recommendations", func(d *pim.ReviewDefinition) {
			d.Settings.DefaultDecisionEnabled, d.Settings.DefaultDecision = true, "Recommendation"
		}, "settings.defaultDecision"},
		{"every occurrence over", func(d *pim.ReviewDefinition) { d.Settings.Recurrence.StartDate = "2025-01-01" }, "settings.recurrence"},
	} {
		_, err := e.rv.Create(context.Background(), pim.Identity{ID: "admin"}, e.definition(pim.ReviewScope{ResourceScope: payrollScope}, c.mutate))
		var pe *pim.Error
		if !errors.As(err, &pe) || pe.Field != c.field || pe.Code != "InvalidAccessReview" {
			t.Errorf("%s: %v; want an error at %s", c.name, err, c.field)
		}
	}
	if defs, err := pim.ListReviews(context.Background(), e.st, e.c.Now()); err != nil || len(defs) != 0 {
		t.Fatalf("refused definitions were stored: %d %v", len(defs), err)
	}
}

// TestReviewDelete: deleting a definition removes its instances and
// items, and is audited.
func TestReviewDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	e.people()
	e.put(e.assignment(uid(101), who.alice, "Reader", payrollScope, schedule.Schedule{}))
	d := e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}))
	e.sweep()
	inst := e.instance(d.ID)
	if err := e.rv.Delete(ctx, "admin", d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pim.GetReview(ctx, e.st, d.ID, e.c.Now()); !errors.Is(err, pim.ErrReviewNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if len(e.items(inst.ID)) != 0 || e.exists(pim.ReviewInstanceKind, inst.ID) {
		t.Fatal("the instance or its items outlive the definition")
	}
	if err := e.rv.Delete(ctx, "admin", d.ID); !errors.Is(err, pim.ErrReviewNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	if got := e.audited(); got["accessReview.deleteDefinition admin"] != 1 {
		t.Fatalf("audit %v", got)
	}
}
