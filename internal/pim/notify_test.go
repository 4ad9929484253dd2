package pim_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// hookReceiver is a webhook endpoint on 127.0.0.1 that keeps what it is sent
// and answers as told: the statuses in answers first, then always (204
// when unset); hang makes it answer nothing until the client gives up,
// drop close the connection unanswered.
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []hookDelivery
	answers []int
	always  int
	hang    bool
	drop    bool
}

type hookDelivery struct {
	header http.Header
	body   []byte
	note   pim.Notification
	status int
}

func newHookReceiver(t testing.TB) *hookReceiver {
	r := &hookReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status, hang, drop := http.StatusNoContent, r.hang, r.drop
		switch {
		case len(r.answers) > 0:
			status, r.answers = r.answers[0], r.answers[1:]
		case r.always != 0:
			status = r.always
		}
		d := hookDelivery{header: req.Header.Clone(), body: body, status: status}
		_ = json.Unmarshal(body, &d.note)
		r.got = append(r.got, d)
		r.mu.Unlock()
		if drop {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if hang {
			select {
			case <-req.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) set(fn func(r *hookReceiver)) { r.mu.Lock(); fn(r); r.mu.Unlock() }

// deliveries are every request received; delivered those answered 2xx.
func (r *hookReceiver) deliveries() []hookDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *hookReceiver) delivered() []hookDelivery {
	var out []hookDelivery
	for _, d := range r.deliveries() {
		if d.status/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

func eventTypes(ds []hookDelivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.note.Type)
	}
	return out
}

// logBuffer collects a logger's output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *logBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newWebhookSecret(t testing.TB) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// notifyDirectory writes the tests' directory — alice, bob (an approver through
// the group g-approvers), carol, and root, who owns / — and returns its
// snapshot.
func notifyDirectory(t testing.TB, st store.Store) *directory.Snapshot {
	t.Helper()
	ctx := context.Background()
	_, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, u := range []directory.User{
			{ID: "alice", UserPrincipalName: "alice@contoso.com", DisplayName: "Alice", Mail: "alice.smith@contoso.com"},
			{ID: "bob", UserPrincipalName: "bob@contoso.com", DisplayName: "Bob", Mail: "bob@contoso.com"},
			{ID: "carol", UserPrincipalName: "carol@contoso.com", DisplayName: "Carol"},
			{ID: "root", UserPrincipalName: "root@contoso.com", DisplayName: "Root", Mail: "root@contoso.com"},
		} {
			o, err := directory.Users.Object(&u)
			if err != nil {
				return err
			}
			if err := tx.Create(ctx, o); err != nil {
				return err
			}
		}
		g := directory.Group{GraphGroup: directory.GraphGroup{ID: "g-approvers", DisplayName: "PIM approvers"}, Members: []string{"bob"}}
		o, err := directory.Groups.Object(&g)
		if err != nil {
			return err
		}
		if err := tx.Create(ctx, o); err != nil {
			return err
		}
		owner, _ := rbac.LookupRole("Owner")
		body, _ := json.Marshal(rbac.Assignment{ID: "root-owner", PrincipalID: "root", RoleDefinitionID: owner.ID, Scope: "/"})
		return tx.Create(ctx, store.Object{Kind: rbac.Kind, ID: "root-owner", Body: body})
	})
	if err != nil {
		t.Fatal(err)
	}
	var snap *directory.Snapshot
	if err := st.View(ctx, func(ctx context.Context, r store.Reader, rev int64) error {
		snap, err = directory.Build(ctx, r, rev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return snap
}

// roleAdmins answers who may write role assignments at a scope from the
// store's assignments, compiled once, as the node does from its snapshot.
func roleAdmins(t testing.TB, st store.Store) func(roleKind, scope string) []string {
	t.Helper()
	eng := storeEngine(t, st)
	return func(roleKind, scope string) []string {
		if roleKind == pim.RoleKindDirectory {
			scope = "/directory"
		}
		return eng.WhoCan("Microsoft.Authorization/roleAssignments/write", scope, false, time.Time{})
	}
}

// startNotifier starts a notifier on st — its first step puts its cursor at
// the log's end — with short timeouts and backoff.
func startNotifier(t testing.TB, st store.Store, dir *directory.Snapshot, secret string, log *slog.Logger) *pim.Notifier {
	t.Helper()
	n, err := pim.NewNotifier(st, pim.NotifierOptions{Secret: secret, Timeout: 300 * time.Millisecond, Attempts: 3, Backoff: 5 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	n.Directory = func() *directory.Snapshot { return dir }
	n.Admins = roleAdmins(t, st)
	drainNotifier(t, n)
	return n
}

// drainNotifier steps n until it has nothing left to handle.
func drainNotifier(t testing.TB, n *pim.Notifier) {
	t.Helper()
	for range 100 {
		c, err := n.Step(context.Background())
		if err != nil {
			t.Fatalf("step: %v", err)
		}
		if c == 0 {
			return
		}
	}
	t.Fatal("the notifier does not catch up")
}

func setRoleNotify(t testing.TB, s *pim.Service, p pim.Policy, urls ...string) {
	t.Helper()
	p.Notify = urls
	if err := s.SetPolicy(context.Background(), "root", pim.PolicyRecord{RoleKind: pim.RoleKindRBAC, RoleDefinitionID: contributor, Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
}

func personKeys(ps []pim.Person) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID+"|"+p.UserPrincipalName+"|"+p.Mail)
	}
	return out
}

// verifySignatures checks every delivery's Standard Webhooks signature with the
// library's verifier and a wrong secret's refusal.
func verifySignatures(t *testing.T, secret string, ds []hookDelivery) {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := standardwebhooks.NewWebhook(newWebhookSecret(t))
	for i, d := range ds {
		if err := wh.Verify(d.body, d.header); err != nil {
			t.Errorf("delivery %d (%s): signature: %v", i, d.note.Type, err)
		}
		if other.Verify(d.body, d.header) == nil {
			t.Errorf("delivery %d verifies with another secret", i)
		}
		if d.header.Get("Content-Type") != "application/json" || !strings.HasPrefix(d.header.Get("webhook-id"), "msg_") {
			t.Errorf("delivery %d headers %v", i, d.header)
		}
	}
}

// TestNotifyApproval: an activation that needs approval tells the
// approvers (a group's member and a user, by sign-in name) and the
// requester; the approval tells the requester, the approvers and the
// role's administrators; a denial tells the requester why. Each event is
// signed, once, in order.
func TestNotifyApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	s.Groups = dir.TransitiveMemberOf
	recv := newHookReceiver(t)
	secret := newWebhookSecret(t)
	p := pim.DefaultPolicy()
	p.RequireApproval, p.Approvers = true, []string{"g-approvers", "carol"}
	setRoleNotify(t, s, p, recv.srv.URL+"/hooks/pim")
	eligible(t, s, "alice", 30)
	n := startNotifier(t, st, dir, secret, nil)

	r, err := activate(s, alice, 2*time.Hour, "month end")
	if err != nil || r.Status != pim.StatusPendingApproval {
		t.Fatalf("pending: %+v %v", r, err)
	}
	drainNotifier(t, n)
	got := recv.delivered()
	if len(got) != 1 {
		t.Fatalf("after the request: %v", eventTypes(got))
	}
	e := got[0].note
	if e.Type != pim.EventApprovalRequired || e.Request.ID != r.ID || e.Request.Status != pim.StatusPendingApproval ||
		e.Request.RoleName != "Contributor" || e.Request.Scope != scope || e.Request.Justification != "month end" ||
		e.Request.Principal.UserPrincipalName != "alice@contoso.com" || e.Request.ApprovalDeadline == nil ||
		e.Request.EndDateTime == nil || !e.Request.StartDateTime.Equal(c.Now()) || e.Request.RequestorID != "alice" {
		t.Fatalf("approval required: %+v", e)
	}
	if a := personKeys(e.Recipients.Approvers); !slices.Equal(a, []string{"bob|bob@contoso.com|bob@contoso.com", "carol|carol@contoso.com|"}) {
		t.Fatalf("approvers %v", a)
	}
	if q := personKeys(e.Recipients.Requestor); !slices.Equal(q, []string{"alice|alice@contoso.com|alice.smith@contoso.com"}) || e.Recipients.Admins != nil {
		t.Fatalf("requestor %v admins %v", q, e.Recipients.Admins)
	}
	if !strings.HasPrefix(e.Summary, "alice@contoso.com asks to activate Contributor at /apps/payroll until ") || strings.Contains(e.Summary, "http") {
		t.Fatalf("summary %q", e.Summary)
	}

	c.Add(10 * time.Minute)
	if _, err := s.Decide(ctx, pim.Caller{ID: "bob"}, r.ID, true, "ticket checked"); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	got = recv.delivered()
	if len(got) != 2 {
		t.Fatalf("after the approval: %v", eventTypes(got))
	}
	e = got[1].note
	if e.Type != pim.EventRequestApproved || e.Request.Status != pim.StatusProvisioned || e.Actor.UserPrincipalName != "bob@contoso.com" ||
		e.Request.Approval == nil || e.Request.Approval.ApproverID != "bob" || !e.Request.StartDateTime.Equal(c.Now()) ||
		!e.Request.EndDateTime.Equal(c.Now().Add(2*time.Hour)) {
		t.Fatalf("approved: %+v", e)
	}
	if q, a := personKeys(e.Recipients.Requestor), personKeys(e.Recipients.Admins); len(q) != 1 || q[0] != "alice|alice@contoso.com|alice.smith@contoso.com" ||
		!slices.Equal(a, []string{"root|root@contoso.com|root@contoso.com"}) || len(e.Recipients.Approvers) != 2 {
		t.Fatalf("approved recipients %+v", e.Recipients)
	}
	if !strings.HasPrefix(e.Summary, "bob@contoso.com approved alice@contoso.com's request to activate Contributor at /apps/payroll") {
		t.Fatalf("summary %q", e.Summary)
	}

	// Denied.
	c.Add(3 * time.Hour)
	r2, err := activate(s, alice, time.Hour, "one more")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(ctx, pim.Caller{ID: "carol"}, r2.ID, false, "not today"); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	got = recv.delivered()
	if want := []string{pim.EventApprovalRequired, pim.EventRequestApproved, pim.EventApprovalRequired, pim.EventRequestDenied}; !slices.Equal(eventTypes(got), want) {
		t.Fatalf("events %v; want %v", eventTypes(got), want)
	}
	e = got[3].note
	if e.Request.ID != r2.ID || e.Request.Status != pim.StatusDenied || e.Request.Approval == nil || e.Request.Approval.Justification != "not today" ||
		len(e.Recipients.Requestor) != 1 || e.Recipients.Admins != nil || e.Summary != "carol@contoso.com denied alice@contoso.com's request to activate Contributor at /apps/payroll" {
		t.Fatalf("denied: %+v", e)
	}
	verifySignatures(t, secret, got)
	seen := map[string]bool{}
	for _, d := range recv.deliveries() {
		if seen[d.header.Get("webhook-id")] || seen[d.note.ID] {
			t.Fatalf("sent twice: %s", d.note.Type)
		}
		seen[d.header.Get("webhook-id")], seen[d.note.ID] = true, true
	}
}

// TestNotifyExpiry: an activation without approval tells the requester
// and the administrators; its end, found by the sweep, tells them again.
func TestNotifyExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	secret := newWebhookSecret(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	eligible(t, s, "alice", 30)
	n := startNotifier(t, st, dir, secret, nil)
	r, err := activate(s, alice, time.Hour, "fix payroll")
	if err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	c.Add(30 * time.Minute)
	if _, expired, err := s.Sweep(ctx); err != nil || expired != 0 {
		t.Fatalf("early sweep: %d %v", expired, err)
	}
	drainNotifier(t, n)
	if got := recv.delivered(); len(got) != 1 || got[0].note.Type != pim.EventRoleActivated || personKeys(got[0].note.Recipients.Admins)[0] != "root|root@contoso.com|root@contoso.com" {
		t.Fatalf("before the end: %v", eventTypes(got))
	}
	c.Add(30 * time.Minute)
	if _, expired, err := s.Sweep(ctx); err != nil || expired != 1 {
		t.Fatalf("sweep: %d %v", expired, err)
	}
	drainNotifier(t, n)
	got := recv.delivered()
	if len(got) != 2 {
		t.Fatalf("after the sweep: %v", eventTypes(got))
	}
	e := got[1].note
	end := r.ScheduleInfo.Expiration.EndDateTime
	if e.Type != pim.EventRoleExpired || e.Request.TargetScheduleID != r.TargetID || e.Request.Principal.ID != "alice" || e.Actor.ID != pim.AuditActor ||
		!e.Request.EndDateTime.Equal(*end) || len(e.Recipients.Requestor) != 1 || len(e.Recipients.Admins) != 1 ||
		e.Summary != "alice@contoso.com's activation of Contributor at /apps/payroll ended at "+end.Format(time.RFC3339) {
		t.Fatalf("expired: %+v", e)
	}
	verifySignatures(t, secret, got)
}

// TestNotifyRetry: a receiver that answers 503 once gets the event again,
// with the same webhook-id, and nothing is recorded as failed.
func TestNotifyRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, _ := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	recv.set(func(r *hookReceiver) { r.answers = []int{http.StatusServiceUnavailable} })
	secret := newWebhookSecret(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	n := startNotifier(t, st, dir, secret, nil)
	eligible(t, s, "alice", 30)
	drainNotifier(t, n)
	ds := recv.deliveries()
	if len(ds) != 2 || ds[0].status != http.StatusServiceUnavailable || ds[1].status != http.StatusNoContent {
		t.Fatalf("deliveries %d", len(ds))
	}
	if ds[0].header.Get("webhook-id") != ds[1].header.Get("webhook-id") || !bytes.Equal(ds[0].body, ds[1].body) ||
		ds[1].note.Type != pim.EventEligibilityCreated {
		t.Fatalf("the retry is another message: %q %q", ds[0].header.Get("webhook-id"), ds[1].header.Get("webhook-id"))
	}
	verifySignatures(t, secret, ds)
	if evs, _ := st.ListAudit(ctx, store.AuditQuery{Action: pim.NotificationAction}); len(evs) != 0 {
		t.Fatalf("a delivered event recorded as failed: %+v", evs)
	}
}

// TestNotifyRestart: a second notifier waits while the first holds the
// lease (detection's lease, held by another node, is no obstacle); after
// the first stops, a new one on the same store sends what happened since,
// and nothing twice.
func TestNotifyRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	secret := newWebhookSecret(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	eligible(t, s, "alice", 30)
	if held, err := store.NewLease(st, "detect", "another node", time.Minute).Hold(ctx); err != nil || !held {
		t.Fatalf("detect lease: %v %v", held, err)
	}
	first := startNotifier(t, st, dir, secret, nil)
	if _, err := activate(s, alice, 2*time.Hour, "month end"); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, first)
	second, err := pim.NewNotifier(st, pim.NotifierOptions{Secret: secret}, nil)
	if err != nil {
		t.Fatal(err)
	}
	second.Directory = func() *directory.Snapshot { return dir }
	if c, err := second.Step(ctx); err != nil || c != 0 {
		t.Fatalf("a second notifier stepped while the first holds the lease: %d %v", c, err)
	}
	c.Add(10 * time.Minute)
	if _, err := s.Submit(ctx, alice, pim.Request{RequestType: pim.SelfDeactivate, RoleDefinitionID: contributor, Scope: scope}); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	eligible(t, s, "bob", 30)
	drainNotifier(t, second)
	got := recv.delivered()
	if want := []string{pim.EventRoleActivated, pim.EventRoleDeactivated, pim.EventEligibilityCreated}; !slices.Equal(eventTypes(got), want) {
		t.Fatalf("events %v; want %v", eventTypes(got), want)
	}
	if got[2].note.Request.Principal.ID != "bob" {
		t.Fatalf("the last event is about %s", got[2].note.Request.Principal.ID)
	}
	// And a third, later, finds nothing left.
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}
	third := startNotifier(t, st, dir, secret, nil)
	drainNotifier(t, third)
	if n := len(recv.deliveries()); n != 3 {
		t.Fatalf("%d deliveries after a third start", n)
	}
}

// TestNotifyFailingURL: receivers that keep failing, never answer or drop
// the connection do not keep a good one from its events: each gets its bounded
// attempts (then one per event until it recovers), each failure is in the
// audit log, and the cursor moves on. Neither the secret nor the URLs'
// tokens reach the audit log or the log.
func TestNotifyFailingURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, c := setup(t)
	dir := notifyDirectory(t, st)
	good, bad, mute, gone := newHookReceiver(t), newHookReceiver(t), newHookReceiver(t), newHookReceiver(t)
	bad.set(func(r *hookReceiver) { r.always = http.StatusInternalServerError })
	mute.set(func(r *hookReceiver) { r.hang = true })
	gone.set(func(r *hookReceiver) { r.drop = true })
	secret := newWebhookSecret(t)
	var logs logBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	setRoleNotify(t, s, pim.DefaultPolicy(), mute.srv.URL+"/hooks/mute-T0KEN", bad.srv.URL+"/services/T0KEN/B0KEN?code=s3cr3t",
		gone.srv.URL+"/hooks/gone?token=T0KEN", good.srv.URL)
	n := startNotifier(t, st, dir, secret, log)

	eligible(t, s, "alice", 30)
	start := time.Now()
	drainNotifier(t, n)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("one event took %v", took)
	}
	if len(good.delivered()) != 1 || len(bad.deliveries()) != 3 || len(mute.deliveries()) != 3 || len(gone.deliveries()) != 3 {
		t.Fatalf("good %d, bad %d, mute %d", len(good.delivered()), len(bad.deliveries()), len(mute.deliveries()))
	}
	// A second event: one attempt each at the failing receivers.
	if _, err := activate(s, alice, time.Hour, "payroll"); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	if len(good.delivered()) != 2 || len(bad.deliveries()) != 4 || len(mute.deliveries()) != 4 || len(gone.deliveries()) != 4 {
		t.Fatalf("good %d, bad %d, mute %d", len(good.delivered()), len(bad.deliveries()), len(mute.deliveries()))
	}
	failures, err := st.ListAudit(ctx, store.AuditQuery{Action: pim.NotificationAction})
	if err != nil || len(failures) != 6 {
		t.Fatalf("failure records %d %v", len(failures), err)
	}
	var reasons []string
	for _, f := range failures {
		var d struct {
			Endpoint, Error, Type string
			Attempts              int
		}
		if err := json.Unmarshal(f.Details, &d); err != nil || f.Result != "failure" || f.Actor != pim.AuditActor {
			t.Fatalf("record %+v %v", f, err)
		}
		if !strings.HasPrefix(d.Endpoint, bad.srv.URL+" (") && !strings.HasPrefix(d.Endpoint, mute.srv.URL+" (") &&
			!strings.HasPrefix(d.Endpoint, gone.srv.URL+" (") || d.Attempts < 1 || d.Type == "" {
			t.Fatalf("endpoint %q", d.Endpoint)
		}
		reasons = append(reasons, d.Error)
	}
	if !slices.Contains(reasons, "the receiver answered 500 Internal Server Error") || !slices.Contains(reasons, "no answer within 300ms") ||
		len(slices.DeleteFunc(slices.Clone(reasons), func(r string) bool { return !strings.Contains(r, "EOF") })) != 2 {
		t.Fatalf("reasons %q", reasons)
	}
	// Recovered: the bad receiver gets the next event at the first try.
	bad.set(func(r *hookReceiver) { r.always = 0 })
	c.Add(10 * time.Minute)
	if _, err := s.Submit(ctx, alice, pim.Request{RequestType: pim.SelfDeactivate, RoleDefinitionID: contributor, Scope: scope}); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	if d := bad.delivered(); len(d) != 1 || d[0].note.Type != pim.EventRoleDeactivated || len(good.delivered()) != 3 {
		t.Fatalf("after recovery: bad %v good %d", eventTypes(d), len(good.delivered()))
	}
	verifySignatures(t, secret, good.delivered())

	all, err := st.ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var audit bytes.Buffer
	for _, ev := range all {
		audit.WriteString(ev.Target + " " + string(ev.Details) + "\n")
	}
	key := strings.TrimPrefix(secret, "whsec_")
	for _, leak := range []string{key, key[:16], "T0KEN", "s3cr3t", "/services/", "/hooks/", "token="} {
		if strings.Contains(audit.String(), leak) {
			t.Errorf("the audit log holds %q", leak)
		}
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	if !strings.Contains(logs.String(), "pim: notification not delivered") {
		t.Fatalf("failures not logged: %s", logs.String())
	}
}

// TestNotifyWithoutSecret: without a signing secret nothing is posted,
// and every event that would have been is recorded as undelivered.
func TestNotifyWithoutSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, _ := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	setRoleNotify(t, s, pim.DefaultPolicy(), recv.srv.URL)
	n := startNotifier(t, st, dir, "", nil)
	eligible(t, s, "alice", 30)
	drainNotifier(t, n)
	if len(recv.deliveries()) != 0 {
		t.Fatal("posted unsigned")
	}
	evs, err := st.ListAudit(ctx, store.AuditQuery{Action: pim.NotificationAction})
	if err != nil || len(evs) != 1 || !strings.Contains(string(evs[0].Details), "pim.notifications.webhookSecretFile") {
		t.Fatalf("records %+v %v", evs, err)
	}
}

// TestNotifyGraphRules: Graph's notification rules decide which events
// are sent and whom they name — no requestor mails, approvers only for
// what needs them plus a mailbox, no admin alerts for activations, none
// for new eligibilities.
func TestNotifyGraphRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, st, _ := setup(t)
	dir := notifyDirectory(t, st)
	recv := newHookReceiver(t)
	secret := newWebhookSecret(t)
	rules := graphDefaultRuleMaps(t)
	for _, r := range rules {
		switch r["id"] {
		case "Notification_Requestor_EndUser_Assignment":
			r["notificationLevel"] = "None"
		case "Notification_Approver_EndUser_Assignment":
			r["notificationLevel"], r["notificationRecipients"] = "Critical", []string{"secops@contoso.com"}
		case "Notification_Admin_EndUser_Assignment":
			r["isDefaultRecipientsEnabled"] = false
		case "Notification_Admin_Admin_Eligibility":
			r["notificationLevel"] = "None"
		case "Notification_Requestor_Admin_Assignment":
			r["isDefaultRecipientsEnabled"] = false
		case "Approval_EndUser_Assignment":
			setting := r["setting"].(map[string]any)
			setting["isApprovalRequired"] = true
			setting["approvalStages"].([]any)[0].(map[string]any)["primaryApprovers"] = []any{
				map[string]any{"@odata.type": "#microsoft.graph.singleUser", "userId": "carol"}}
		}
	}
	raw, _ := json.Marshal(rules)
	p, err := pim.PolicyFromGraphRules(raw)
	if err != nil {
		t.Fatal(err)
	}
	setRoleNotify(t, s, p, recv.srv.URL)
	n := startNotifier(t, st, dir, secret, nil)
	eligible(t, s, "alice", 30)
	r, err := activate(s, alice, time.Hour, "month end")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(ctx, pim.Caller{ID: "carol"}, r.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, Target: pim.TargetAssignment, PrincipalID: "bob",
		RoleDefinitionID: contributor, Scope: scope, Justification: "cover for alice",
		ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: dur(48 * time.Hour)}}}); err != nil {
		t.Fatal(err)
	}
	drainNotifier(t, n)
	got := recv.delivered()
	if want := []string{pim.EventEligibilityCreated, pim.EventApprovalRequired, pim.EventAssignmentCreated}; !slices.Equal(eventTypes(got), want) {
		t.Fatalf("events %v; want %v", eventTypes(got), want)
	}
	if e := got[0].note; len(e.Recipients.Requestor) != 1 || e.Recipients.Admins != nil || e.Recipients.Approvers != nil {
		t.Fatalf("eligibility recipients %+v", e.Recipients)
	}
	// Told after the approval: the request's start has moved since, so
	// the event names none rather than the wrong one.
	if e := got[1].note; !slices.Equal(personKeys(e.Recipients.Approvers), []string{"carol|carol@contoso.com|", "||secops@contoso.com"}) ||
		e.Recipients.Requestor != nil || e.Recipients.Admins != nil || e.Request.StartDateTime != nil || e.Request.Status != pim.StatusPendingApproval {
		t.Fatalf("approval recipients %+v", e.Recipients)
	}
	// An active assignment follows the Admin_Assignment rules: the
	// administrators are told, the assignee not.
	if e := got[2].note; !slices.Equal(personKeys(e.Recipients.Admins), []string{"root|root@contoso.com|root@contoso.com"}) ||
		e.Recipients.Requestor != nil || e.Request.Target != pim.TargetAssignment ||
		e.Summary != "admin assigned Contributor at /apps/payroll to bob@contoso.com until "+e.Request.EndDateTime.Format(time.RFC3339) {
		t.Fatalf("assignment %+v %q", e.Recipients, e.Summary)
	}
}

func graphDefaultRuleMaps(t *testing.T) []map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/graph-docs-default-entra-role-pim-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Value []struct {
			Policy struct {
				Rules []map[string]any `json:"rules"`
			} `json:"policy"`
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Value[0].Policy.Rules
}

// TestNotificationRulesFromGraph: the documented defaults read as nine
// rules, every event to the default recipients; mistakes name the rule
// and the field.
func TestNotificationRulesFromGraph(t *testing.T) {
	t.Parallel()
	rules := graphDefaultRuleMaps(t)
	raw, _ := json.Marshal(rules)
	p, err := pim.PolicyFromGraphRules(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Notifications) != 9 {
		t.Fatalf("%d notification rules", len(p.Notifications))
	}
	for _, r := range p.Notifications {
		if r.Level != pim.LevelAll || !r.DefaultRecipients || len(r.Recipients) != 0 {
			t.Fatalf("rule %+v", r)
		}
	}
	for _, tt := range []struct {
		name string
		edit func(r map[string]any)
		want string
	}{
		{"recipient type", func(r map[string]any) { r["recipientType"] = "Approver" },
			`(Notification_Admin_Admin_Eligibility): recipientType: "Approver", but the rule is for Admin`},
		{"level", func(r map[string]any) { r["notificationLevel"] = "Loud" },
			`notificationRules[0].notificationLevel: must be All, Critical or None, not "Loud"`},
		{"recipient", func(r map[string]any) { r["notificationRecipients"] = []string{"ops team"} },
			`notificationRules[0].notificationRecipients[0]: "ops team" is not an e-mail address`},
		{"type", func(r map[string]any) { r["notificationType"] = "Sms" }, `notificationType: "Sms" is not Email`},
		{"unknown rule", func(r map[string]any) { r["id"] = "Notification_Admin_Everything" }, `(Notification_Admin_Everything): not a rule Verity knows`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rules := graphDefaultRuleMaps(t)
			for _, r := range rules {
				if r["id"] == "Notification_Admin_Admin_Eligibility" {
					tt.edit(r)
				}
			}
			raw, _ := json.Marshal(rules)
			if _, err := pim.PolicyFromGraphRules(raw); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want %q", err, tt.want)
			}
		})
	}
}

// TestNotifyValidate: webhook URLs and rules are checked with the field
// at fault.
func TestNotifyValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		edit func(p *pim.Policy)
		want string
	}{
		{"scheme", func(p *pim.Policy) { p.Notify = []string{"ftp://hooks.example.com/x"} }, "notify[0]: must be an http(s) URL with a host"},
		{"no host", func(p *pim.Policy) { p.Notify = []string{"https://"} }, "notify[0]: must be an http(s) URL with a host"},
		{"twice", func(p *pim.Policy) { p.Notify = []string{"https://a.example.com", "https://a.example.com"} }, "notify[1]: listed twice"},
		{"rule id", func(p *pim.Policy) {
			p.Notifications = []pim.NotificationRule{{ID: "Notification_Boss_EndUser_Assignment", Level: pim.LevelAll}}
		}, `notificationRules[0].id: "Notification_Boss_EndUser_Assignment" is not a notification rule`},
		{"rule twice", func(p *pim.Policy) {
			r := pim.NotificationRule{ID: pim.NotificationRuleID(pim.RecipientAdmin, pim.GroupAdminAssignment), Level: pim.LevelAll}
			p.Notifications = []pim.NotificationRule{r, r}
		}, "notificationRules[1].id: Notification_Admin_Admin_Assignment is listed twice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pim.DefaultPolicy()
			tt.edit(&p)
			if err := p.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v; want %q", err, tt.want)
			}
		})
	}
}

// TestNotifierSecret: a secret that is not Standard Webhooks' shape is
// refused without being quoted.
func TestNotifierSecret(t *testing.T) {
	t.Parallel()
	_, st, _ := setup(t)
	for _, secret := range []string{"hunter2-hunter2-hunter2-hunter2", "whsec_c2hvcnQ=", "whsec_!!not-base64!!not-base64!!not-base64!!"} {
		_, err := pim.NewNotifier(st, pim.NotifierOptions{Secret: secret}, nil)
		if err == nil || strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) {
			t.Errorf("secret %q: %v", secret, err)
		}
	}
	if _, err := pim.NewNotifier(st, pim.NotifierOptions{Secret: newWebhookSecret(t)}, nil); err != nil {
		t.Fatal(err)
	}
}
