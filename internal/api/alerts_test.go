package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// TestAlerts: a password spray in the sign-in log becomes an alert the API
// lists and shows; it is acknowledged, then closed, and a closed alert
// stays closed.
func TestAlerts(t *testing.T) {
	t.Parallel()
	st := storeSQLite(t)
	e := newEnv(t, st)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for i := range 6 {
		ev := signin.Event{ID: fmt.Sprint("s", i), CreatedDateTime: t0.Add(time.Duration(i) * time.Minute), UserPrincipalName: fmt.Sprintf("u%d@contoso.com", i),
			IPAddress: "203.0.113.7", IsInteractive: true, Status: signin.Status{ErrorCode: signin.CodeInvalidCredentials}, AppliedConditionalAccess: []signin.AppliedPolicy{}}
		b, _ := json.Marshal(ev)
		if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: ev.CreatedDateTime, Action: signin.AuditAction, Result: "failure", Details: b}); err != nil {
			t.Fatal(err)
		}
	}
	eng := detect.NewEngine(st, detect.DefaultDetectors, nil)
	for {
		n, err := eng.Step(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var list struct{ Value []detect.StoredAlert }
	e.admin("GET", "/api/v1/security/alerts?status=new", nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 1 || list.Value[0].Detector != "passwordSpray" || list.Value[0].IP.String() != "203.0.113.7" || len(list.Value[0].Evidence) != 5 {
		t.Fatalf("alerts %+v", list.Value)
	}
	id := list.Value[0].ID
	var a detect.StoredAlert
	e.admin("GET", "/api/v1/security/alerts/"+id, nil).want(http.StatusOK).decode(&a)
	if a.Status != detect.StatusNew || a.Summary == "" {
		t.Fatalf("alert %+v", a)
	}
	e.admin("POST", "/api/v1/security/alerts/"+id+"/acknowledge", map[string]string{"comment": "looking"}).want(http.StatusOK).decode(&a)
	if a.Status != detect.StatusAcknowledged || a.Comment != "looking" || a.UpdatedBy != e.adminID {
		t.Fatalf("acknowledged %+v", a)
	}
	e.admin("POST", "/api/v1/security/alerts/"+id+"/close", nil).want(http.StatusOK)
	e.admin("POST", "/api/v1/security/alerts/"+id+"/acknowledge", nil).problem(http.StatusConflict, "Conflict", "id")
	e.admin("GET", "/api/v1/security/alerts?status=new", nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 0 {
		t.Fatalf("new alerts after closing: %+v", list.Value)
	}
	e.admin("GET", "/api/v1/security/alerts?status=maybe", nil).problem(http.StatusBadRequest, "InvalidRequest", "status")
	e.admin("GET", "/api/v1/security/alerts?detector=nope", nil).problem(http.StatusBadRequest, "InvalidRequest", "detector")
	e.admin("GET", "/api/v1/security/alerts/doesnotexist", nil).problem(http.StatusNotFound, "NotFound", "id")
	e.admin("POST", "/api/v1/security/alerts/"+id+"/close", map[string]any{"comment": 5}).problem(http.StatusBadRequest, "InvalidRequest", "comment")
	found := false
	for _, ev := range e.audit() {
		found = found || ev.Action == "alerts.close"
	}
	if !found {
		t.Fatal("closing an alert is not in the audit log")
	}
}

// TestRiskyUsers: a raised risk is listed; dismissing it takes it out of
// decisions; confirming makes it high.
func TestRiskyUsers(t *testing.T) {
	t.Parallel()
	st := storeSQLite(t)
	e := newEnv(t, st)
	ctx := context.Background()
	bob := e.createUser("bob@contoso.com")
	if err := detect.RaiseUserRisk(ctx, st, bob, "bob@contoso.com", "high", "alert-1"); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Value []struct{ ID, UserPrincipalName, RiskLevel, RiskState string }
	}
	e.admin("GET", "/api/v1/identityProtection/riskyUsers", nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 1 || list.Value[0].ID != bob || list.Value[0].RiskLevel != "high" || list.Value[0].RiskState != "atRisk" {
		t.Fatalf("risky users %+v", list.Value)
	}
	level := func() string {
		time.Sleep(600 * time.Millisecond) // the cache's freshness
		l, err := detect.NewRiskCache(st).Level(ctx, bob)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	e.admin("POST", "/api/v1/identityProtection/riskyUsers/dismiss", map[string]any{"userIds": []string{"bob@contoso.com"}}).want(http.StatusNoContent)
	if l := level(); l != "none" {
		t.Fatalf("after dismissing: %s", l)
	}
	e.admin("POST", "/api/v1/identityProtection/riskyUsers/confirmCompromised", map[string]any{"userIds": []string{bob}}).want(http.StatusNoContent)
	if l := level(); l != "high" {
		t.Fatalf("after confirming: %s", l)
	}
	e.admin("POST", "/api/v1/identityProtection/riskyUsers/dismiss", map[string]any{"userIds": []string{"nobody@contoso.com"}}).problem(http.StatusNotFound, "NotFound", "userIds[0]")
	e.admin("POST", "/api/v1/identityProtection/riskyUsers/dismiss", map[string]any{"userIds": []string{}}).problem(http.StatusBadRequest, "InvalidRequest", "userIds")
	e.admin("POST", "/api/v1/identityProtection/riskyUsers/dismiss", map[string]any{"users": []string{bob}}).problem(http.StatusBadRequest, "InvalidRequest", "users")
}
