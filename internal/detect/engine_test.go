package detect_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// record appends one sign-in to the audit log as the sign-in pages do.
func record(t *testing.T, st store.Store, at time.Time, id, user, ip string, code int) {
	t.Helper()
	ev := signin.Event{ID: id, CreatedDateTime: at, UserPrincipalName: user, IPAddress: ip, IsInteractive: true,
		ClientAppUsed: "Browser", Status: signin.Status{ErrorCode: code}, AppliedConditionalAccess: []signin.AppliedPolicy{}}
	b, _ := json.Marshal(ev)
	result := "success"
	if code != 0 {
		result = "failure"
	}
	if _, err := st.AppendAudit(context.Background(), store.AuditEvent{Time: at, Actor: user, Action: signin.AuditAction, Target: "/applications/x", Result: result, Details: b}); err != nil {
		t.Fatal(err)
	}
}

func drain(t *testing.T, e *detect.Engine) {
	t.Helper()
	for range 1000 {
		n, err := e.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the engine did not catch up")
}

func alerts(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, d := range detect.DetectorNames() {
		as, err := detect.Alerts(context.Background(), st, d, 100)
		if err != nil {
			t.Fatal(err)
		}
		out[d] = len(as)
	}
	return out
}

// TestEngineResumes: the engine reads Verity's sign-in log from the audit
// log; stopped in the middle of attacks and started again, it raises
// each attack once — none missed, none twice.
func TestEngineResumes(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	// Unrelated events between sign-ins, as in a real log.
	if _, err := st.AppendAudit(context.Background(), store.AuditEvent{Time: t0, Action: "users.create", Target: "/api/v1/users", Result: "success"}); err != nil {
		t.Fatal(err)
	}
	// A spray of 3 accounts, then the engine runs and stops.
	for i := range 3 {
		record(t, st, t0.Add(time.Duration(i)*time.Minute), fmt.Sprint("a", i), fmt.Sprintf("u%d@contoso.com", i), "203.0.113.7", signin.CodeInvalidCredentials)
	}
	e := detect.NewEngine(st, detect.DefaultDetectors, nil)
	e.Batch = 2
	drain(t, e)
	if got := alerts(t, st); got["passwordSpray"] != 0 {
		t.Fatalf("after 3 accounts: %v", got)
	}
	// The spray goes on (it crosses the threshold only now) and a brute
	// force begins, while the engine is down.
	for i := 3; i < 8; i++ {
		record(t, st, t0.Add(time.Duration(i)*time.Minute), fmt.Sprint("a", i), fmt.Sprintf("u%d@contoso.com", i), "203.0.113.7", signin.CodeInvalidCredentials)
	}
	for i := range 6 {
		record(t, st, t0.Add(10*time.Minute+time.Duration(i)*time.Second), fmt.Sprint("b", i), "alice@contoso.com", "198.51.100.9", signin.CodeInvalidCredentials)
	}
	// Another node's engine: it waits for the lease.
	e2 := detect.NewEngine(st, detect.DefaultDetectors, nil)
	if n, err := e2.Step(context.Background()); n != 0 || err != nil {
		t.Fatalf("a second engine read while the first held the lease: %d %v", n, err)
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	drain(t, e2)
	if got := alerts(t, st); got["passwordSpray"] != 1 || got["bruteForce"] != 0 {
		t.Fatalf("after the spray: %v", got)
	}
	// Stopped again mid brute force; it ends in a success.
	for i := 6; i < 10; i++ {
		record(t, st, t0.Add(10*time.Minute+time.Duration(i)*time.Second), fmt.Sprint("b", i), "alice@contoso.com", "198.51.100.9", signin.CodeInvalidCredentials)
	}
	record(t, st, t0.Add(11*time.Minute), "b-ok", "alice@contoso.com", "198.51.100.9", 0)
	if err := e2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e3 := detect.NewEngine(st, detect.DefaultDetectors, nil)
	drain(t, e3)
	drain(t, e3)
	if got := alerts(t, st); got["passwordSpray"] != 1 || got["bruteForce"] != 1 {
		t.Fatalf("after the brute force: %v (the spray raised again, or the brute force missed)", got)
	}
	as, err := detect.Alerts(context.Background(), st, "bruteForce", 10)
	if err != nil || len(as) != 1 || as[0].User != "alice@contoso.com" || len(as[0].Evidence) != 11 {
		t.Fatalf("brute force alert %+v %v", as, err)
	}
}
