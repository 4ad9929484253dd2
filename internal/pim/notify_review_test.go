package pim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// mailUser is a user whose mail differs from its sign-in name, so that
// an event's recipients show both.
func (e *reviewEnv) mailUser(id, name string) store.Object {
	e.t.Helper()
	created := e.c.Now().AddDate(-1, 0, 0)
	u := &directory.User{ID: id, UserPrincipalName: strings.ToLower(name) + "@contoso.com", DisplayName: name,
		Mail: strings.ToLower(name) + ".mail@contoso.com", CreatedDateTime: &created}
	u.Normalize()
	o, err := directory.Users.Object(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// notifiedTenant is the review tests' tenant with mail on every user the
// events name, and its directory as the notifier sees it.
func (e *reviewEnv) notifiedTenant() *directory.Snapshot {
	e.t.Helper()
	e.people()
	e.put(e.mailUser(who.alice, "Alice"), e.mailUser(who.bob, "Bob"), e.mailUser(who.carol, "Carol"), e.mailUser(who.erin, "Erin"),
		e.mailUser(who.frank, "Frank"), e.mailUser(who.rita, "Rita"), e.mailUser(who.ron, "Ron"), e.mailUser(who.root, "Root"))
	var dir *directory.Snapshot
	if err := e.st.View(context.Background(), func(ctx context.Context, r store.Reader, rev int64) error {
		var err error
		dir, err = directory.Build(ctx, r, rev)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// reviewers maps an event's reviewers' "id|userPrincipalName|mail" to
// their item counts.
func reviewers(n pim.Notification) map[string]int {
	out := map[string]int{}
	for _, r := range n.Recipients.Reviewers {
		out[r.ID+"|"+r.UserPrincipalName+"|"+r.Mail] = r.Items
	}
	return out
}

func mailKey(id, name string) string {
	return id + "|" + strings.ToLower(name) + "@contoso.com|" + strings.ToLower(name) + ".mail@contoso.com"
}

// payrollHolders gives alice Contributor and bob, rita (a reviewer) and
// the payroll group (erin, and frank through nested) Reader at payroll:
// six items.
func (e *reviewEnv) payrollHolders() {
	e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(102), who.bob, "Reader", payrollScope, schedule.Schedule{}),
		e.assignment(uid(103), who.rita, "Reader", payrollScope, schedule.Schedule{}),
		e.assignment(uid(104), who.payroll, "Reader", payrollScope, schedule.Schedule{}))
}

// TestNotifyReviewLifecycle: an instance's start tells its reviewers — a
// user, a group's member, and a user who holds the role through a group
// — each with the items they may decide (not their own, nor their
// group's), as the decisions are checked; half-way, the sweep records the reminder once, whatever
// sweeps again on this node or another, and the reminder names only the
// reviewers with items still not reviewed; completion and application
// tell the creator and the scope's administrators. Each event is signed,
// posted once to the good receiver, and recorded as failed, without its
// URL, for the receiver that fails; no URL reaches the audit log or the
// log.
func TestNotifyReviewLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	dir := e.notifiedTenant()
	e.payrollHolders()
	good, bad := newHookReceiver(t), newHookReceiver(t)
	bad.set(func(r *hookReceiver) { r.always = http.StatusInternalServerError })
	secret := newWebhookSecret(t)
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := startNotifier(t, e.st, dir, secret, log)

	d := e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Reviewers = []string{who.rita, who.reviewers, who.frank}
		d.Notify = []string{good.srv.URL + "/hooks/reviews?token=T0KEN", bad.srv.URL + "/services/T0KEN/B0KEN"}
		d.Settings.MailNotificationsEnabled, d.Settings.ReminderNotificationsEnabled = true, true
	})
	created, err := e.rv.Create(ctx, pim.Identity{ID: who.carol}, d)
	if err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	if got := good.deliveries(); len(got) != 0 {
		t.Fatalf("before the start: %v", eventTypes(got))
	}
	if s := e.sweep(); s.Started != 1 || s.Reminded != 0 {
		t.Fatalf("sweep %+v", s)
	}
	inst := e.instance(created.ID)
	drainNotifier(t, n)
	got := good.delivered()
	if len(got) != 1 {
		t.Fatalf("after the start: %v", eventTypes(got))
	}
	started := got[0].note
	if started.Type != pim.EventReviewStarted || started.Review == nil || started.Review.InstanceID != inst.ID ||
		started.Review.DefinitionID != created.ID || started.Review.DisplayName != "Payroll access" || started.Review.Status != pim.ReviewInProgress ||
		started.Review.ResourceScope != payrollScope || !started.Review.EndDateTime.Equal(inst.EndDateTime) ||
		started.Review.CreatedBy.Mail != "carol.mail@contoso.com" || started.Review.Summary.Items != 6 || started.Actor.ID != pim.ReviewActor ||
		started.Request != nil || started.Recipients.Admins != nil || started.Recipients.Creator != nil {
		t.Fatalf("started: %+v", started)
	}
	// Rita reviews all but her own Reader; Ron, through the group, all
	// six; Frank neither his own item nor the payroll group's, which he is
	// in through nested.
	want := map[string]int{mailKey(who.rita, "Rita"): 5, mailKey(who.ron, "Ron"): 6, mailKey(who.frank, "Frank"): 4}
	if !maps.Equal(reviewers(started), want) {
		t.Fatalf("started reviewers %v; want %v", reviewers(started), want)
	}
	def, err := pim.GetReview(ctx, e.st, created.ID, e.c.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range started.Recipients.Reviewers {
		may := 0
		for _, it := range e.items(inst.ID) {
			if e.rv.CanDecide(r.ID, &def, &it) {
				may++
			}
		}
		if may != r.Items {
			t.Errorf("%s may decide %d items; the event says %d", r.UserPrincipalName, may, r.Items)
		}
	}
	if started.Summary != `Access review "Payroll access" of /apps/payroll started: 6 items to review by `+inst.EndDateTime.Format(time.RFC3339) {
		t.Fatalf("summary %q", started.Summary)
	}

	// Ron decides everything but Rita's item, which only Ron and Frank can
	// decide: Rita has nothing left, they one each.
	for _, it := range e.items(inst.ID) {
		decision := pim.DecisionApprove
		if it.Principal.ID == who.bob {
			decision = pim.DecisionDeny
		}
		if it.Principal.ID != who.rita {
			if err := e.decide(who.ron, it.ID, decision, "checked"); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.c.Add(7*24*time.Hour - time.Minute)
	if s := e.sweep(); s.Reminded != 0 {
		t.Fatalf("a reminder before half-time: %+v", s)
	}
	e.c.Add(time.Minute)
	other := pim.New(e.st) // another node, on the same store and clock
	other.Now = e.c.Now
	otherReviews := pim.NewReviews(other, ownerGuard)
	if s := e.sweep(); s.Reminded != 1 {
		t.Fatalf("half-time sweep %+v", s)
	}
	if s := e.sweep(); s.Reminded != 0 {
		t.Fatalf("second sweep %+v", s)
	}
	if s, err := otherReviews.Sweep(ctx); err != nil || s.Reminded != 0 {
		t.Fatalf("another node's sweep %+v %v", s, err)
	}
	if got := e.audited(); got["accessReview.remind "+pim.ReviewActor] != 1 {
		t.Fatalf("remind records %v", got)
	}
	drainNotifier(t, n)
	got = good.delivered()
	if len(got) != 2 {
		t.Fatalf("after the reminder: %v", eventTypes(got))
	}
	reminder := got[1].note
	if want := map[string]int{mailKey(who.ron, "Ron"): 1, mailKey(who.frank, "Frank"): 1}; reminder.Type != pim.EventReviewReminder || !maps.Equal(reviewers(reminder), want) ||
		reminder.Review.Summary.NotReviewed != 1 || reminder.Review.Summary.Items != 6 {
		t.Fatalf("reminder %+v; reviewers %v, want %v", reminder, reviewers(reminder), want)
	}

	// The end: the creator and the scope's administrators (root, Owner
	// at /) are told of the completion and of the application.
	e.c.Add(7 * 24 * time.Hour)
	if s := e.sweep(); s.Completed != 1 || s.Reminded != 0 {
		t.Fatalf("end sweep %+v", s)
	}
	if _, err := e.rv.Apply(ctx, pim.Identity{ID: who.root}, inst.ID); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	got = good.delivered()
	if want := []string{pim.EventReviewStarted, pim.EventReviewReminder, pim.EventReviewCompleted, pim.EventReviewApplied}; !slices.Equal(eventTypes(got), want) {
		t.Fatalf("events %v; want %v", eventTypes(got), want)
	}
	for _, ev := range got[2:] {
		note := ev.note
		if !slices.Equal(personKeys(note.Recipients.Creator), []string{mailKey(who.carol, "Carol")}) ||
			!slices.Equal(personKeys(note.Recipients.Admins), []string{mailKey(who.root, "Root")}) || note.Recipients.Reviewers != nil {
			t.Fatalf("%s recipients %+v", note.Type, note.Recipients)
		}
	}
	if c := got[2].note; c.Review.Status != pim.ReviewCompleted || c.Review.Summary.Approved != 4 || c.Review.Summary.Denied != 1 || c.Review.Summary.NotReviewed != 1 ||
		c.Summary != `Access review "Payroll access" of /apps/payroll completed: 4 approved, 1 denied, 0 don't know, 1 not reviewed` {
		t.Fatalf("completed %+v %q", c.Review, c.Summary)
	}
	if a := got[3].note; a.Review.Status != pim.ReviewApplied || a.Review.Summary.Applied != 1 || a.Actor.Mail != "root.mail@contoso.com" ||
		a.Summary != `Access review "Payroll access" of /apps/payroll: its decisions were applied by root@contoso.com: 1 removed, 0 failed` {
		t.Fatalf("applied %+v %q", a.Review, a.Summary)
	}
	verifySignatures(t, secret, got)
	seen := map[string]bool{}
	for _, d := range good.deliveries() {
		if seen[d.header.Get("webhook-id")] {
			t.Fatalf("sent twice: %s", d.note.Type)
		}
		seen[d.header.Get("webhook-id")] = true
	}

	// The failing receiver: its attempts, then one per event, each
	// recorded without its URL. The attempts at one event are one message
	// to that URL, another than the good receiver's.
	tries := bad.deliveries()
	if len(tries) != 3+1+1+1 {
		t.Fatalf("%d attempts at the failing receiver", len(tries))
	}
	if id := tries[0].header.Get("webhook-id"); tries[1].header.Get("webhook-id") != id || tries[2].header.Get("webhook-id") != id ||
		tries[3].header.Get("webhook-id") == id || tries[0].note.ID != started.ID || got[0].header.Get("webhook-id") == id {
		t.Fatalf("webhook-ids: %q %q %q %q; the good receiver's %q", id, tries[1].header.Get("webhook-id"), tries[2].header.Get("webhook-id"),
			tries[3].header.Get("webhook-id"), got[0].header.Get("webhook-id"))
	}
	failures, err := e.st.ListAudit(ctx, store.AuditQuery{Action: pim.NotificationAction})
	if err != nil || len(failures) != 4 {
		t.Fatalf("failure records %d %v", len(failures), err)
	}
	for _, f := range failures {
		var fd struct{ Type, InstanceID, Endpoint string }
		if err := json.Unmarshal(f.Details, &fd); err != nil || f.Result != "failure" || fd.InstanceID != inst.ID ||
			!strings.HasPrefix(fd.Type, "accessReview.instance.") || !strings.HasPrefix(fd.Endpoint, bad.srv.URL+" (") {
			t.Fatalf("failure record %s %v", f.Details, err)
		}
	}
	all, err := e.st.ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	for _, ev := range all {
		audit.WriteString(ev.Target + " " + string(ev.Details) + "\n")
	}
	if !strings.Contains(audit.String(), `"notify":["`+good.srv.URL+` (`) {
		t.Fatalf("the definition's record does not name its webhooks: %s", audit.String())
	}
	for _, leak := range []string{"T0KEN", "B0KEN", "/hooks/", "/services/", "token="} {
		if strings.Contains(audit.String(), leak) {
			t.Errorf("the audit log holds %q", leak)
		}
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log holds %q", leak)
		}
	}

	// Deleting the definition takes its reminder's mark with it.
	if !e.exists(pim.ReviewReminderKind, inst.ID) {
		t.Fatal("no reminder mark")
	}
	if err := e.rv.Delete(ctx, who.root, created.ID); err != nil {
		t.Fatal(err)
	}
	if e.exists(pim.ReviewReminderKind, inst.ID) {
		t.Fatal("the reminder mark outlives its definition")
	}
}

// TestNotifyReviewSelfReview: in a self-review each user under review is
// told of their own items, and the fallback reviewer of what principals
// cannot review themselves: a service principal and a group.
func TestNotifyReviewSelfReview(t *testing.T) {
	t.Parallel()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	dir := e.notifiedTenant()
	e.put(e.assignment(uid(101), who.alice, "Contributor", payrollScope, schedule.Schedule{}),
		e.assignment(uid(102), who.alice, "Reader", payrollScope, schedule.Schedule{}),
		e.assignment(uid(103), who.buildBot, "Reader", payrollScope, schedule.Schedule{}),
		e.assignment(uid(104), who.payroll, "Reader", payrollScope, schedule.Schedule{}))
	recv := newHookReceiver(t)
	n := startNotifier(t, e.st, dir, newWebhookSecret(t), nil)
	e.create(e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Reviewers, d.SelfReview, d.FallbackReviewers = nil, true, []string{who.rita}
		d.Notify, d.Settings.MailNotificationsEnabled = []string{recv.srv.URL}, true
	}))
	e.sweep()
	drainNotifier(t, n)
	got := recv.delivered()
	if len(got) != 1 || got[0].note.Type != pim.EventReviewStarted {
		t.Fatalf("events %v", eventTypes(got))
	}
	want := map[string]int{mailKey(who.alice, "Alice"): 2, mailKey(who.erin, "Erin"): 1, mailKey(who.frank, "Frank"): 1, mailKey(who.rita, "Rita"): 2}
	if r := reviewers(got[0].note); !maps.Equal(r, want) {
		t.Fatalf("reviewers %v; want %v", r, want)
	}
}

// TestNotifyReviewSettings: a definition without webhooks posts nothing
// and records no reminder; one with reminders only posts only the
// reminder; one with mail only posts all but the reminder. A stop before
// the start tells nobody.
func TestNotifyReviewSettings(t *testing.T) {
	t.Parallel()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	dir := e.notifiedTenant()
	e.payrollHolders()
	silent, reminders, mail := newHookReceiver(t), newHookReceiver(t), newHookReceiver(t)
	n := startNotifier(t, e.st, dir, newWebhookSecret(t), nil)
	scope := pim.ReviewScope{ResourceScope: payrollScope}
	e.create(e.definition(scope, func(d *pim.ReviewDefinition) {
		d.DisplayName = "no webhooks"
		d.Settings.MailNotificationsEnabled, d.Settings.ReminderNotificationsEnabled = true, true
	}))
	e.create(e.definition(scope, func(d *pim.ReviewDefinition) {
		d.DisplayName = "reminders"
		d.Notify, d.Settings.ReminderNotificationsEnabled = []string{reminders.srv.URL}, true
	}))
	e.create(e.definition(scope, func(d *pim.ReviewDefinition) {
		d.DisplayName = "mail"
		d.Notify, d.Settings.MailNotificationsEnabled = []string{mail.srv.URL}, true
	}))
	later := e.create(e.definition(scope, func(d *pim.ReviewDefinition) {
		d.DisplayName = "stopped before its start"
		d.Settings.Recurrence.StartDate = e.c.Now().Add(48 * time.Hour).Format(time.RFC3339)
		d.Notify, d.Settings.MailNotificationsEnabled = []string{silent.srv.URL}, true
	}))
	if _, err := e.rv.Stop(context.Background(), pim.Identity{ID: who.root}, e.instance(later.ID).ID); err != nil {
		t.Fatal(err)
	}
	if s := e.sweep(); s.Started != 3 {
		t.Fatalf("sweep %+v", s)
	}
	e.c.Add(7 * 24 * time.Hour)
	if s := e.sweep(); s.Reminded != 1 {
		t.Fatalf("half-time sweep %+v: only the definition with webhooks and reminders records one", s)
	}
	e.c.Add(7 * 24 * time.Hour)
	if s := e.sweep(); s.Completed != 3 {
		t.Fatalf("end sweep %+v", s)
	}
	drainNotifier(t, n)
	if got := eventTypes(reminders.delivered()); !slices.Equal(got, []string{pim.EventReviewReminder}) {
		t.Fatalf("reminders only: %v", got)
	}
	if got := eventTypes(mail.delivered()); !slices.Equal(got, []string{pim.EventReviewStarted, pim.EventReviewCompleted}) {
		t.Fatalf("mail only: %v", got)
	}
	if got := silent.deliveries(); len(got) != 0 {
		t.Fatalf("stopped before its start: %v", eventTypes(got))
	}
}

// TestReviewNotifyValidate: a definition's webhook URLs are checked as a
// role's are — the same limits and messages — with the path at fault,
// and webhooks that nothing would be posted to are refused.
func TestReviewNotifyValidate(t *testing.T) {
	t.Parallel()
	e := newReviewEnv(t, storetest.OpenSQLite(t))
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "https://hooks.example.com/" + string(rune('a'+i))
	}
	for _, tt := range []struct {
		name  string
		urls  []string
		field string
	}{
		{"scheme", []string{"https://hooks.example.com/a", "ftp://hooks.example.com/x"}, "notify[1]"},
		{"no host", []string{"https://"}, "notify[0]"},
		{"fragment", []string{"https://hooks.example.com/a#b"}, "notify[0]"},
		{"twice", []string{"https://a.example.com", "https://a.example.com"}, "notify[1]"},
		{"too many", eleven, "notify"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
				d.Notify, d.Settings.MailNotificationsEnabled = tt.urls, true
			})
			err := d.Validate()
			var pe *pim.Error
			if !errors.As(err, &pe) || pe.Code != "InvalidAccessReview" || pe.Field != tt.field {
				t.Fatalf("error %v; want InvalidAccessReview at %s", err, tt.field)
			}
			p := pim.DefaultPolicy()
			p.Notify = tt.urls
			if perr := p.Validate(); perr == nil || perr.Error() != err.Error() {
				t.Fatalf("the review says %q, a role's settings %v", err, perr)
			}
		})
	}
	d := e.definition(pim.ReviewScope{ResourceScope: payrollScope}, func(d *pim.ReviewDefinition) {
		d.Notify = []string{"https://hooks.example.com/a"}
	})
	var pe *pim.Error
	if err := d.Validate(); !errors.As(err, &pe) || pe.Field != "notify" || !strings.Contains(pe.Message, "mailNotificationsEnabled") {
		t.Fatalf("webhooks with every notification off: %v", err)
	}
}
