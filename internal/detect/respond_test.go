package detect_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// doneActions records the actions taken; each changes something the
// first time only, as the node's real actions do. failBlock makes
// BlockSignIn fail.
type doneActions struct {
	mu        sync.Mutex
	calls     map[string]int
	failBlock bool
}

func (a *doneActions) do(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[name]++
	return a.calls[name] == 1
}

func (a *doneActions) count(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[name]
}

func (a *doneActions) RevokeSessions(_ context.Context, u string) (bool, error) {
	return a.do("revokeSessions " + u), nil
}

func (a *doneActions) BlockSignIn(_ context.Context, u, _ string) (bool, error) {
	if a.failBlock {
		a.do("blockSignIn failed " + u)
		return false, errors.New("the directory is read-only")
	}
	return a.do("blockSignIn " + u), nil
}

func (a *doneActions) RequirePasswordChange(_ context.Context, u string) (bool, error) {
	return a.do("requirePasswordChange " + u), nil
}

func (a *doneActions) DisableServicePrincipal(_ context.Context, app, _ string) (bool, error) {
	return a.do("disableServicePrincipal " + app), nil
}

// bruteForce writes ten wrong passwords and a success for alice.
func bruteForce(t *testing.T, st store.Store, t0 time.Time) {
	t.Helper()
	for i := range 11 {
		code := signin.CodeInvalidCredentials
		if i == 10 {
			code = 0
		}
		ev := signin.Event{ID: fmt.Sprint("bf", i), CreatedDateTime: t0.Add(time.Duration(i) * time.Second), UserID: "alice-id",
			UserPrincipalName: "alice@contoso.com", IPAddress: "198.51.100.9", IsInteractive: true, ClientAppUsed: "Browser",
			Status: signin.Status{ErrorCode: code}, AppliedConditionalAccess: []signin.AppliedPolicy{}}
		b, _ := json.Marshal(ev)
		if _, err := st.AppendAudit(context.Background(), store.AuditEvent{Time: ev.CreatedDateTime, Actor: "alice-id",
			Action: signin.AuditAction, Target: "/applications/x", Result: "x", Details: b}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlaybooks: an alert runs the playbooks that answer it — each action
// once, even when the engine reads the log again after a restart; a
// failed action is audited and tried again; a dry run does nothing but
// say what it would do; the webhook's body carries a Standard Webhooks
// signature its receiver verifies.
func TestPlaybooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	verifier, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var deliveries []detect.WebhookEvent
	var ids []string
	attempts := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var ev detect.WebhookEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		deliveries = append(deliveries, ev)
		ids = append(ids, r.Header.Get("webhook-id"))
	}))
	defer hook.Close()

	playbooks := []detect.Playbook{
		{Name: "contain", Detectors: []string{"bruteForce", "mfaFatigue"}, MinSeverity: "high",
			Actions:    []string{detect.ActionRevokeSessions, detect.ActionBlockSignIn, detect.ActionRequirePasswordChange, detect.ActionWebhook},
			WebhookURL: hook.URL, WebhookSecret: secret},
		{Name: "rehearse", Actions: []string{detect.ActionConfirmCompromised, detect.ActionDisableServicePrincipal}, DryRun: true},
		{Name: "sprays only", Detectors: []string{"passwordSpray"}, Actions: []string{detect.ActionBlockSignIn}},
	}
	for i := range playbooks {
		if err := playbooks[i].Validate(); err != nil {
			t.Fatalf("playbook %s: %v", playbooks[i].Name, err)
		}
	}
	act := &doneActions{calls: map[string]int{}, failBlock: true}
	run := func() {
		e := detect.NewEngine(st, detect.DefaultDetectors, nil)
		e.Responder = detect.NewResponder(st, act, playbooks, nil)
		drain(t, e)
		e.Responder.Wait()
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	bruteForce(t, st, time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC))
	run()
	as, err := detect.Alerts(ctx, st, "bruteForce", 10)
	if err != nil || len(as) != 1 {
		t.Fatalf("alerts %+v %v", as, err)
	}
	alertID := as[0].ID
	if act.count("revokeSessions alice-id") != 1 || act.count("requirePasswordChange alice-id") != 1 || act.count("blockSignIn failed alice-id") != 1 {
		t.Fatalf("actions %v", act.calls)
	}
	if act.count("disableServicePrincipal ") != 0 {
		t.Fatalf("a dry run acted: %v", act.calls)
	}
	if r, err := detect.GetUserRisk(ctx, st, "alice-id"); err != nil || r.State != detect.RiskAtRisk {
		t.Fatalf("the dry run confirmed the compromise: %+v %v", r, err)
	}

	// Read again from the start (a restart): only the failed action runs
	// again — now it works.
	act.failBlock = false
	if _, err := st.PutRecord(ctx, store.Record{Kind: "detectCursor", ID: "signIns", Body: []byte(`{"next":0,"replayFrom":0}`)}); err != nil {
		t.Fatal(err)
	}
	run()
	if act.count("revokeSessions alice-id") != 1 || act.count("requirePasswordChange alice-id") != 1 || act.count("blockSignIn alice-id") != 1 {
		t.Fatalf("actions after a replay %v", act.calls)
	}
	mu.Lock()
	if len(deliveries) != 1 || deliveries[0].Alert.ID != alertID || deliveries[0].Playbook != "contain" || attempts != 2 || ids[0] == "" {
		t.Fatalf("webhook deliveries %+v (attempts %d)", deliveries, attempts)
	}
	mu.Unlock()

	got := map[string]string{}
	rs, err := detect.Responses(ctx, st, alertID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		got[r.Playbook+"/"+r.Action] = r.Result
	}
	want := map[string]string{"contain/revokeSessions": "done", "contain/blockSignIn": "done", "contain/requirePasswordChange": "done",
		"contain/webhook": "done", "rehearse/confirmCompromised": "dryRun", "rehearse/disableServicePrincipal": "skipped"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("responses %v, want %v", got, want)
	}
	// Every action, the failed one too, is in the audit log.
	evs, err := st.ListAudit(ctx, store.AuditQuery{Action: detect.ResponseAuditAction, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]int{}
	for _, ev := range evs {
		var r detect.Response
		if err := json.Unmarshal(ev.Details, &r); err != nil || ev.Actor != detect.ResponseActor {
			t.Fatalf("audit event %+v: %v", ev, err)
		}
		results[r.Action+" "+ev.Result]++
	}
	if results["blockSignIn failure"] != 1 || results["blockSignIn success"] != 1 || results["webhook success"] != 1 || len(evs) != 7 {
		t.Fatalf("audited responses %v (%d events)", results, len(evs))
	}
}

func TestPlaybookValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p    detect.Playbook
		want string
	}{
		{detect.Playbook{Actions: []string{"webhook"}}, "name"},
		{detect.Playbook{Name: "x"}, "actions"},
		{detect.Playbook{Name: "x", Actions: []string{"reboot"}}, "actions"},
		{detect.Playbook{Name: "x", Actions: []string{"blockSignIn"}, MinSeverity: "critical"}, "minSeverity"},
		{detect.Playbook{Name: "x", Actions: []string{"webhook"}}, "webhookURL"},
		{detect.Playbook{Name: "x", Actions: []string{"webhook"}, WebhookURL: "https://h", WebhookSecret: "short"}, "webhookSecret"},
	} {
		err := c.p.Validate()
		if err == nil || len(err.Error()) < len(c.want) || err.Error()[:len(c.want)] != c.want {
			t.Errorf("%+v: %v, want an error about %s", c.p, err, c.want)
		}
	}
}
