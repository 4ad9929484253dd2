package proxy_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/proxy"
	"github.com/verityhq/verity/internal/store"
)

// pimClock is the time of the proxy and of PIM in the test: it moves only
// when told, so expiry is tested without sleeping.
type pimClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *pimClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *pimClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// TestPIMThroughTheProxy: the application requires assignment; alice is
// only eligible for Verity App User there. She asks to activate it for an
// hour, bob approves, and her requests through the proxy go through — for
// exactly that hour: the first request after it ends is refused, with no
// sign-in, rebuild or sweep in between. Each step is in the audit log.
func TestPIMThroughTheProxy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := &pimClock{t: time.Now().UTC()}
	e := newNode(t, nodeOptions{tune: func(o *proxy.Options) { o.Now = clock.Now }}, nil)
	sp := &directory.ServicePrincipal{ID: spID, AppID: appID, DisplayName: "Payroll", AppRoleAssignmentRequired: true}
	sp.Normalize()
	e.write(must(t)(directory.ServicePrincipals.Object(sp)))

	svc := pim.New(e.st)
	svc.Now = clock.Now
	admin := pim.Caller{ID: "admin", Admin: true, MFA: true}
	scope := "/apps/" + appID
	p := pim.DefaultPolicy()
	p.RequireApproval, p.Approvers, p.RequireMFA = true, []string{"bob"}, false
	if err := svc.SetPolicy(ctx, "admin", pim.PolicyRecord{RoleDefinitionID: "Verity App User", Scope: scope, Policy: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: aliceID, RoleDefinitionID: "Verity App User", Scope: scope}); err != nil {
		t.Fatal(err)
	}
	d := pim.Duration(time.Hour)
	req, err := svc.Submit(ctx, pim.Caller{ID: aliceID}, pim.Request{RequestType: pim.SelfActivate, RoleDefinitionID: "Verity App User", Scope: scope,
		Justification: "payroll run", ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: &d}}})
	if err != nil || req.Status != pim.StatusPendingApproval {
		t.Fatalf("activation: %+v %v", req, err)
	}
	if req, err = svc.Decide(ctx, pim.Caller{ID: "bob"}, req.ID, true, "checked"); err != nil || req.Status != pim.StatusProvisioned {
		t.Fatalf("approval: %+v %v", req, err)
	}
	// The snapshot picks the activation up; alice signs in and goes through.
	rev, err := e.st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.live.WaitFor(ctx, rev); err != nil {
		t.Fatal(err)
	}
	c := e.browser()
	if resp, body := e.signIn(c, e.base+"/payroll/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in with the role active: %d %s", resp.StatusCode, body)
	}
	nc := noRedirects(c)
	clock.Add(59 * time.Minute)
	if resp, body := e.get(nc, e.base+"/payroll/x", "Accept", "application/json"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a minute before the end: %d %s", resp.StatusCode, body)
	}
	clock.Add(time.Minute)
	resp, body := e.get(nc, e.base+"/payroll/x", "Accept", "application/json")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "50105") {
		t.Fatalf("at the end: %d %s", resp.StatusCode, body)
	}
	// The sweep records the expiry.
	if _, expired, err := svc.Sweep(ctx); err != nil || expired != 1 {
		t.Fatalf("sweep: %d %v", expired, err)
	}
	evs, err := e.st.ListAudit(ctx, store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Action] = true
	}
	for _, a := range []string{"pim.setPolicy", "pim.adminAssign", "pim.selfActivate", "pim.approve", "pim.expire"} {
		if !seen[a] {
			t.Errorf("no %s in the audit log", a)
		}
	}
}
