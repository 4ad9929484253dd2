package decision_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

const payrollApp = "7f3e2c1b-0000-4000-8000-0000000000a1"

func policy(t testing.TB, id, js string) store.Object {
	t.Helper()
	p, _, err := access.ParsePolicy([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	p.ID = id
	o, err := access.Object(p)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestDecide joins conditional access and RBAC: allow, challenge (step
// up), deny by policy, deny by RBAC, deny for a disabled account.
func TestDecide(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	put(t, st,
		user(t, alice, "alice@contoso.com", true), user(t, bob, "bob@contoso.com", true), user(t, carol, "carol@contoso.com", false),
		group(t, outer, "Payroll admins", alice, carol),
		assign(t, aOwner, outer, "Contributor", "/apps/payroll"),
		policy(t, "d1000000-0000-4000-8000-000000000001", `{"displayName": "MFA for payroll", "state": "enabled",
		  "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["`+payrollApp+`"]}, "clientAppTypes": ["all"]},
		  "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}`),
		policy(t, "d1000000-0000-4000-8000-000000000002", `{"displayName": "Block high risk", "state": "enabled",
		  "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"], "signInRiskLevels": ["high"]},
		  "grantControls": {"operator": "OR", "builtInControls": ["block"]}}`),
	)
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	req := func(who string, mfa bool, risk access.RiskLevel, action string) *decision.Request {
		r := &decision.Request{Action: action, Scope: "/apps/payroll/runs/2026-11", Access: access.Request{
			Identity: access.IdentityUser, UserID: who, Applications: []string{payrollApp},
			ClientApp: access.ClientAppBrowser, Platform: access.PlatformWindows, IP: netip.MustParseAddr("203.0.113.7"), Country: "NL",
			SignInRisk: risk, Now: time.Now()}}
		if mfa {
			r.Access.Satisfied = access.ControlMFA
		}
		return r
	}
	for _, tt := range []struct {
		name string
		req  *decision.Request
		want decision.Verdict
	}{
		{"a payroll admin after MFA", req(alice, true, access.RiskNone, "Microsoft.Web/sites/write"), decision.Allow},
		{"the same without MFA must step up", req(alice, false, access.RiskNone, "Microsoft.Web/sites/write"), decision.Challenge},
		{"high sign-in risk blocks", req(alice, true, access.RiskHigh, "Microsoft.Web/sites/write"), decision.Deny},
		{"Contributor cannot grant roles", req(alice, true, access.RiskNone, "Microsoft.Authorization/roleAssignments/write"), decision.Deny},
		{"no role: nothing to step up to", req(bob, false, access.RiskNone, "Microsoft.Web/sites/write"), decision.Deny},
		{"a disabled account", req(carol, true, access.RiskNone, "Microsoft.Web/sites/write"), decision.Deny},
	} {
		var d decision.Decision
		if err := snap.Decide(tt.req, &d); err != nil {
			t.Fatal(err)
		}
		if d.Verdict != tt.want {
			t.Errorf("%s: %v (access %v, rbac %v: %v); want %v", tt.name, d.Verdict, d.Access.Outcome, d.RBAC.Allowed, d.RBAC.Reason, tt.want)
		}
	}
}

// BenchmarkDecide: the joined decision on one snapshot — 20k users in 2k
// groups nested 4 levels, 200k role assignments over a 6-level scope tree, 200
// conditional access policies — resolving the user from the snapshot.
func BenchmarkDecide(b *testing.B) {
	st := storetest.OpenSQLite(b)
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(kind, n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, n) }
	const users, groups, assignments, policies = 20_000, 2_000, 200_000, 200
	var objs []store.Object
	// Groups nest 4 levels deep: each group below the top sits in one group
	// of the level above, as in the directory benchmarks.
	members := make([][]string, groups)
	const levels = 4
	per := groups / levels
	for g := per; g < groups; g++ {
		parent := (g/per-1)*per + rng.IntN(per)
		members[parent] = append(members[parent], id(2, g))
	}
	for u := range users {
		objs = append(objs, user(b, id(1, u), fmt.Sprintf("u%d@contoso.com", u), true))
		for range 3 {
			g := rng.IntN(groups)
			if !slices.Contains(members[g], id(1, u)) {
				members[g] = append(members[g], id(1, u))
			}
		}
	}
	for g := range groups {
		objs = append(objs, group(b, id(2, g), fmt.Sprintf("g%d", g), members[g]...))
	}
	roles := []string{"Reader", "Contributor", "Owner", "Storage Blob Data Reader", "Virtual Machine Contributor", "Website Contributor"}
	scope := func(depth int) string {
		s := ""
		for d := range depth {
			s += fmt.Sprintf("/l%d-%d", d, rng.IntN(4))
		}
		if s == "" {
			return "/"
		}
		return s
	}
	for a := range assignments {
		who := id(1, rng.IntN(users))
		if a%3 == 0 {
			who = id(2, rng.IntN(groups))
		}
		objs = append(objs, assign(b, id(3, a), who, roles[rng.IntN(len(roles))], scope(rng.IntN(6))))
	}
	controls := []string{`["mfa"]`, `["compliantDevice"]`, `["block"]`, `["mfa", "compliantDevice"]`}
	for p := range policies {
		state := "enabled"
		if p%10 == 0 {
			state = "enabledForReportingButNotEnforced"
		}
		js := fmt.Sprintf(`{"displayName": "p%d", "state": %q, "conditions": {"users": {"includeGroups": [%q], "excludeUsers": [%q]},
		  "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"], "signInRiskLevels": %s},
		  "grantControls": {"operator": "OR", "builtInControls": %s}}`, p, state, id(2, rng.IntN(groups)), id(1, rng.IntN(users)),
			[]string{`[]`, `["high"]`, `["medium", "high"]`}[p%3], controls[p%len(controls)])
		objs = append(objs, policy(b, id(4, p), js))
	}
	for i := 0; i < len(objs); i += 5000 {
		put(b, st, objs[i:min(i+5000, len(objs))]...)
	}
	snap, err := decision.Build(context.Background(), st)
	if err != nil {
		b.Fatal(err)
	}
	if eng, err := snap.RBAC(); err != nil || len(eng.Skipped()) > assignments/2 {
		b.Fatalf("rbac: %v", err)
	}
	reqs := make([]decision.Request, 4096)
	for i := range reqs {
		reqs[i] = decision.Request{Action: []string{"Microsoft.Web/sites/read", "Microsoft.Web/sites/write", "Microsoft.Storage/storageAccounts/read"}[i%3],
			Scope: scope(6), Access: access.Request{Identity: access.IdentityUser, UserID: id(1, rng.IntN(users)),
				Applications: []string{payrollApp}, ClientApp: access.ClientAppBrowser, Platform: access.PlatformWindows,
				IP: netip.MustParseAddr("203.0.113.7"), Country: "NL", SignInRisk: access.RiskLevel(rng.IntN(3)), Now: time.Now()}}
	}
	var d decision.Decision
	lat := make([]time.Duration, 0, 1<<16)
	verdicts := [3]int{}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := &reqs[i%len(reqs)]
		r.Access.Groups = nil // resolve from the snapshot every time
		t0 := time.Now()
		if err := snap.Decide(r, &d); err != nil {
			b.Fatal(err)
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t0))
		}
		verdicts[d.Verdict]++
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	}
	b.ReportMetric(float64(verdicts[decision.Allow])/float64(max(1, b.N)), "allow-ratio")
}
