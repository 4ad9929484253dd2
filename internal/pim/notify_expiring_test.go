package pim_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

const day = 24 * time.Hour

// reminder is a pim.expiring audit record and its details.
type reminder struct {
	ev store.AuditEvent
	d  struct {
		RequestType, Target, Status, PrincipalID, RoleDefinitionID, Scope, RoleKind, TargetScheduleID string
		EndDateTime                                                                                   time.Time
	}
}

// reminders are the pim.expiring records, oldest first.
func reminders(t *testing.T, st store.Store) []reminder {
	t.Helper()
	evs, err := st.ListAudit(context.Background(), store.AuditQuery{Action: pim.ExpiringAction, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(evs)
	out := make([]reminder, len(evs))
	for i, ev := range evs {
		out[i].ev = ev
		if err := json.Unmarshal(ev.Details, &out[i].d); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	return out
}

// markers are the ids of the reminders' marks.
func markers(t *testing.T, st store.Store) []string {
	t.Helper()
	objs, err := st.List(context.Background(), pim.ExpiryReminderKind, store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range objs {
		ids = append(ids, o.ID)
	}
	return ids
}

func sweep(t *testing.T, s *pim.Service) {
	t.Helper()
	if _, _, err := s.Sweep(context.Background()); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

// assign makes an administrator's active assignment of Contributor at the
// scope, for days.
func assign(t *testing.T, s *pim.Service, principal string, days int) pim.Request {
	t.Helper()
	r, err := s.Submit(context.Background(), admin, pim.Request{RequestType: pim.AdminAssign, Target: pim.TargetAssignment, PrincipalID: principal,
		RoleDefinitionID: contributor, Scope: scope, Justification: "cover",
		ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Type: "AfterDuration", Duration: dur(time.Duration(days) * day)}}})
	if err != nil || r.Status != pim.StatusProvisioned {
		t.Fatalf("assignment for %s: %+v %v", principal, r, err)
	}
	return r
}

// markReads is a real store that calls then after each read of a
// reminder's mark outside a transaction: what a sweep sees between
// finding a reminder due and recording it.
type markReads struct {
	store.Store
	then func(ctx context.Context) error
}

func (m *markReads) Get(ctx context.Context, kind, id string) (store.Object, error) {
	o, err := m.Store.Get(ctx, kind, id)
	if kind == pim.ExpiryReminderKind {
		if err := m.then(ctx); err != nil {
			return store.Object{}, err
		}
	}
	return o, err
}

// meet returns a then for markReads that holds the first n reads until
// all n have been made: n sweeps find the same reminder due, none
// recorded yet.
func meet(n int) func(ctx context.Context) error {
	var mu sync.Mutex
	release := make(chan struct{})
	return func(ctx context.Context) error {
		mu.Lock()
		if n == 0 {
			mu.Unlock()
			return nil
		}
		if n--; n == 0 {
			close(release)
		}
		mu.Unlock()
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestExpiringEligibility: an eligibility 20 days from its end is not
// reminded of; 13 days from it, one pim.expiring record names it, and
// the principal and the administrators are told once, signed. Sweeping
// again, and two nodes sweeping at once, add nothing.
func TestExpiringEligibility(t *testing.T) {
	t.Parallel()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	secret := newWebhookSecret(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	el := eligible(t, s, "alice", 34)
	end := *el.ScheduleInfo.Expiration.EndDateTime
	n := startNotifier(t, st, dir, secret, nil)

	c.Add(14 * day)
	sweep(t, s)
	if got := reminders(t, st); len(got) != 0 {
		t.Fatalf("20 days before the end: %d reminders", len(got))
	}
	c.Add(7 * day)
	// Two nodes find the reminder due at once; one records it.
	gate := &markReads{Store: st, then: meet(2)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		node := pim.New(gate)
		node.Now = c.Now
		wg.Go(func() {
			if _, _, err := node.Sweep(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	sweep(t, s)
	other := pim.New(st) // another node, later
	other.Now = c.Now
	sweep(t, other)
	got := reminders(t, st)
	if len(got) != 1 {
		t.Fatalf("13 days before the end: %d reminders", len(got))
	}
	r := got[0]
	if r.ev.Actor != pim.AuditActor || r.ev.Target != "/pim/eligibilities/"+el.TargetID || r.ev.Result != "success" ||
		r.d.Target != pim.TargetEligibility || r.d.PrincipalID != "alice" || r.d.RoleDefinitionID != el.RoleDefinitionID ||
		r.d.Scope != scope || r.d.RoleKind != pim.RoleKindRBAC || r.d.TargetScheduleID != el.TargetID || !r.d.EndDateTime.Equal(end) {
		t.Fatalf("record %+v %+v", r.ev, r.d)
	}
	if m := markers(t, st); len(m) != 1 {
		t.Fatalf("marks %v", m)
	}

	drainNotifier(t, n)
	ds := recv.delivered()
	if len(ds) != 1 {
		t.Fatalf("events %v", eventTypes(ds))
	}
	e := ds[0].note
	if e.Type != pim.EventEligibilityExpiring || e.Actor.ID != pim.AuditActor || e.Request.Target != pim.TargetEligibility ||
		e.Request.TargetScheduleID != el.TargetID || !e.Request.EndDateTime.Equal(end) || e.Request.RoleName != "Contributor" ||
		e.Summary != "alice@contoso.com's eligibility for Contributor at /apps/payroll ends at "+end.Format(time.RFC3339)+
			"; alice@contoso.com can ask to extend it (SelfExtend)" {
		t.Fatalf("event %+v", e)
	}
	if q, a := personKeys(e.Recipients.Requestor), personKeys(e.Recipients.Admins); !slices.Equal(q, []string{"alice|alice@contoso.com|alice.smith@contoso.com"}) ||
		!slices.Equal(a, []string{"root|root@contoso.com|root@contoso.com"}) || e.Recipients.Approvers != nil {
		t.Fatalf("recipients %+v", e.Recipients)
	}
	verifySignatures(t, secret, ds)

	// The principal asks to extend it, as the event says they can.
	if _, err := s.Submit(ctx, alice, pim.Request{RequestType: pim.SelfExtend, RoleDefinitionID: contributor, Scope: scope,
		Justification: "still on payroll"}); err != nil {
		t.Fatalf("SelfExtend: %v", err)
	}
}

// TestExpiringExtended: an eligibility whose end an administrator moves
// is reminded of again when the new end is 14 days away, while the mark
// of the old end is still there; each mark is removed once its end has
// passed.
func TestExpiringExtended(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	el := eligible(t, s, "alice", 20)
	oldEnd := *el.ScheduleInfo.Expiration.EndDateTime
	n := startNotifier(t, st, dir, newWebhookSecret(t), nil)

	c.Add(7 * day)
	sweep(t, s)
	if got := reminders(t, st); len(got) != 1 {
		t.Fatalf("reminders %d", len(got))
	}
	ext, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminExtend, PrincipalID: "alice", RoleDefinitionID: contributor, Scope: scope,
		ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Type: "AfterDuration", Duration: dur(7 * day)}}})
	if err != nil || ext.Status != pim.StatusProvisioned {
		t.Fatalf("extend: %+v %v", ext, err)
	}
	newEnd := *ext.ScheduleInfo.Expiration.EndDateTime
	if !newEnd.Equal(oldEnd.Add(7 * day)) {
		t.Fatalf("new end %v", newEnd)
	}
	sweep(t, s)
	if got := reminders(t, st); len(got) != 1 {
		t.Fatalf("after the extension, 20 days before the new end: %d reminders", len(got))
	}
	c.Add(7 * day) // 13 days before the new end, 6 before the old one
	sweep(t, s)
	sweep(t, s)
	got := reminders(t, st)
	if len(got) != 2 || !got[1].d.EndDateTime.Equal(newEnd) || got[1].d.TargetScheduleID != el.TargetID {
		t.Fatalf("reminders %+v", got)
	}
	if m := markers(t, st); len(m) != 2 {
		t.Fatalf("marks %v", m)
	}
	drainNotifier(t, n)
	ds := recv.delivered()
	if want := []string{pim.EventEligibilityExpiring, pim.EventEligibilityExtended, pim.EventEligibilityExpiring}; !slices.Equal(eventTypes(ds), want) {
		t.Fatalf("events %v; want %v", eventTypes(ds), want)
	}
	if !ds[0].note.Request.EndDateTime.Equal(oldEnd) || !ds[2].note.Request.EndDateTime.Equal(newEnd) {
		t.Fatalf("ends %v %v", ds[0].note.Request.EndDateTime, ds[2].note.Request.EndDateTime)
	}
	c.Add(6*day + time.Hour) // past the old end
	sweep(t, s)
	if m := markers(t, st); len(m) != 1 {
		t.Fatalf("after the old end: marks %v", m)
	}
	c.Add(7 * day) // past the new end
	sweep(t, s)
	if m := markers(t, st); len(m) != 0 {
		t.Fatalf("after the new end: marks %v", m)
	}
	if got := reminders(t, st); len(got) != 2 {
		t.Fatalf("after the new end: %d reminders", len(got))
	}
}

// TestExpiringWithoutNotify: a role whose settings have no webhooks gets
// no reminder (nor does another role's webhook count); once its settings
// have one, the next sweep records it.
func TestExpiringWithoutNotify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, _ := setup(t)
	owner, _ := rbac.LookupRole("Owner")
	p := pim.DefaultPolicy()
	p.Notify = []string{"https://hooks.example.com/pim"}
	if err := s.SetPolicy(ctx, "root", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: owner.ID, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	eligible(t, s, "alice", 10)
	assign(t, s, "bob", 10)
	sweep(t, s)
	sweep(t, s)
	if got, m := reminders(t, st), markers(t, st); len(got) != 0 || len(m) != 0 {
		t.Fatalf("without webhooks: %d reminders, marks %v", len(got), m)
	}
	setRoleNotify(t, s, pim.DefaultPolicy(), "https://hooks.example.com/pim")
	sweep(t, s)
	if got := reminders(t, st); len(got) != 2 {
		t.Fatalf("with webhooks: %d reminders", len(got))
	}
}

// TestExpiringAssignment: an administrator's time-bound active
// assignment is reminded of as pim.assignment.expiring; an activation in
// force at the same time, which ends within the hour, is not. The mark
// goes when the assignment ends.
func TestExpiringAssignment(t *testing.T) {
	t.Parallel()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	secret := newWebhookSecret(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	eligible(t, s, "alice", 100)
	as := assign(t, s, "bob", 20)
	end := *as.ScheduleInfo.Expiration.EndDateTime
	n := startNotifier(t, st, dir, secret, nil)

	c.Add(7 * day)
	if _, err := activate(s, alice, time.Hour, "month end"); err != nil {
		t.Fatal(err)
	}
	sweep(t, s)
	got := reminders(t, st)
	if len(got) != 1 {
		t.Fatalf("reminders %+v", got)
	}
	if r := got[0]; r.ev.Target != "/pim/assignments/"+as.TargetID || r.d.Target != pim.TargetAssignment || r.d.PrincipalID != "bob" ||
		r.d.TargetScheduleID != as.TargetID || !r.d.EndDateTime.Equal(end) || r.d.RoleKind != pim.RoleKindRBAC {
		t.Fatalf("record %+v %+v", r.ev, r.d)
	}
	drainNotifier(t, n)
	ds := recv.delivered()
	if want := []string{pim.EventRoleActivated, pim.EventAssignmentExpiring}; !slices.Equal(eventTypes(ds), want) {
		t.Fatalf("events %v; want %v", eventTypes(ds), want)
	}
	e := ds[1].note
	if e.Request.Target != pim.TargetAssignment || e.Request.TargetScheduleID != as.TargetID ||
		!slices.Equal(personKeys(e.Recipients.Requestor), []string{"bob|bob@contoso.com|bob@contoso.com"}) ||
		!slices.Equal(personKeys(e.Recipients.Admins), []string{"root|root@contoso.com|root@contoso.com"}) ||
		e.Summary != "bob@contoso.com's active assignment of Contributor at /apps/payroll ends at "+end.Format(time.RFC3339)+
			"; bob@contoso.com can ask to extend it (SelfExtend with target assignment)" {
		t.Fatalf("event %+v", e)
	}
	verifySignatures(t, secret, ds)
	// bob asks to extend it, as the event says he can.
	if x, err := s.Submit(context.Background(), pim.Caller{ID: "bob"}, pim.Request{RequestType: pim.SelfExtend, Target: pim.TargetAssignment,
		RoleDefinitionID: contributor, Scope: scope}); err != nil || x.Status != pim.StatusPendingApproval || x.TargetID != as.TargetID {
		t.Fatalf("SelfExtend: %+v %v", x, err)
	}

	c.Add(2 * time.Hour)
	if _, expired, err := s.Sweep(context.Background()); err != nil || expired != 1 {
		t.Fatalf("sweep after the activation: %d %v", expired, err)
	}
	if m := markers(t, st); len(m) != 1 {
		t.Fatalf("marks before the end %v", m)
	}
	c.Add(13*day - 2*time.Hour) // at the end: the sweep removes it, and its mark
	if _, expired, err := s.Sweep(context.Background()); err != nil || expired != 1 {
		t.Fatalf("sweep at the end: %d %v", expired, err)
	}
	if m := markers(t, st); len(m) != 0 {
		t.Fatalf("marks %v", m)
	}
	if got := reminders(t, st); len(got) != 1 {
		t.Fatalf("reminders %d", len(got))
	}
}

// TestExpiringRules: reminders follow Graph's notification rules of
// their rule group — Admin_Eligibility for an eligibility, Admin_Assignment
// for an active assignment — and a group's reminder names its members and
// says that an administrator extends it.
func TestExpiringRules(t *testing.T) {
	t.Parallel()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	p := pim.DefaultPolicy()
	p.Notifications = []pim.NotificationRule{
		{ID: pim.NotificationRuleID(pim.RecipientAdmin, pim.GroupAdminEligibility), Level: pim.LevelAll, Recipients: []string{"pim-owners@contoso.com"}},
		{ID: pim.NotificationRuleID(pim.RecipientRequestor, pim.GroupAdminAssignment), Level: pim.LevelNone, DefaultRecipients: true},
		// The rules of activations do not govern reminders.
		{ID: pim.NotificationRuleID(pim.RecipientRequestor, pim.GroupEndUserAssignment), Level: pim.LevelNone, DefaultRecipients: true},
		{ID: pim.NotificationRuleID(pim.RecipientAdmin, pim.GroupEndUserAssignment), Level: pim.LevelNone, DefaultRecipients: true},
	}
	setRoleNotify(t, s, p, recv.srv.URL)
	eligible(t, s, "g-approvers", 20)
	as := assign(t, s, "g-approvers", 20)
	n := startNotifier(t, st, dir, newWebhookSecret(t), nil)
	c.Add(7 * day)
	sweep(t, s)
	drainNotifier(t, n)
	ds := recv.delivered()
	if len(ds) != 2 {
		t.Fatalf("events %v", eventTypes(ds))
	}
	byType := map[string]pim.Notification{}
	for _, d := range ds {
		byType[d.note.Type] = d.note
	}
	el, ok := byType[pim.EventEligibilityExpiring]
	if !ok || !slices.Equal(personKeys(el.Recipients.Requestor), []string{"bob|bob@contoso.com|bob@contoso.com"}) ||
		!slices.Equal(personKeys(el.Recipients.Admins), []string{"||pim-owners@contoso.com"}) ||
		el.Summary != "g-approvers's eligibility for Contributor at /apps/payroll ends at "+el.Request.EndDateTime.Format(time.RFC3339)+
			"; an administrator can extend it (AdminExtend)" {
		t.Fatalf("eligibility %+v", el)
	}
	a, ok := byType[pim.EventAssignmentExpiring]
	if !ok || a.Recipients.Requestor != nil || a.Request.TargetScheduleID != as.TargetID ||
		!slices.Equal(personKeys(a.Recipients.Admins), []string{"root|root@contoso.com|root@contoso.com"}) ||
		a.Summary != "g-approvers's active assignment of Contributor at /apps/payroll ends at "+a.Request.EndDateTime.Format(time.RFC3339)+
			"; an administrator can extend it (AdminExtend with target assignment)" {
		t.Fatalf("assignment %+v", a)
	}
}

// TestExpiringRemovedMeanwhile: a schedule removed, or whose end moves,
// after the sweep found its reminder due and before it recorded it, gets
// none.
func TestExpiringRemovedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		target string
		change pim.Request
	}{
		{"eligibility removed", pim.TargetEligibility, pim.Request{RequestType: pim.AdminRemove}},
		{"eligibility extended", pim.TargetEligibility, pim.Request{RequestType: pim.AdminExtend,
			ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Type: "AfterDuration", Duration: dur(30 * day)}}}},
		{"assignment removed", pim.TargetAssignment, pim.Request{RequestType: pim.AdminRemove, Target: pim.TargetAssignment}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, st, _ := setup(t)
			setRoleNotify(t, s, pim.DefaultPolicy(), "https://hooks.example.com/pim")
			if tt.target == pim.TargetEligibility {
				eligible(t, s, "alice", 10)
			} else {
				assign(t, s, "alice", 10)
			}
			var once sync.Once
			var changed error
			node := pim.New(&markReads{Store: st, then: func(context.Context) error {
				once.Do(func() {
					r := tt.change
					r.PrincipalID, r.RoleDefinitionID, r.Scope = "alice", contributor, scope
					_, changed = s.Submit(ctx, admin, r)
				})
				return changed
			}})
			node.Now = s.Now
			sweep(t, node)
			if got, m := reminders(t, st), markers(t, st); len(got) != 0 || len(m) != 0 {
				t.Fatalf("%d reminders, marks %v", len(got), m)
			}
			sweep(t, node) // later sweeps see it as it is now
			if got := reminders(t, st); len(got) != 0 {
				t.Fatalf("%d reminders", len(got))
			}
		})
	}
}
