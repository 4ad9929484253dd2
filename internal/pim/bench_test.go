package pim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/store/storetest"
)

// BenchmarkActivate measures a SelfActivate without approval on SQLite,
// in a tenant of 1,000 eligibilities: the checks, the time-bound
// assignment, the request and their audit record in one transaction.
func BenchmarkActivate(b *testing.B) {
	benchmarkActivate(b, 0)
}

// BenchmarkActivateInGroups is BenchmarkActivate for users in 50 groups
// each, eligible through the last of them: the tenant's 1,000
// eligibilities are groups'.
func BenchmarkActivateInGroups(b *testing.B) {
	benchmarkActivate(b, 50)
}

func benchmarkActivate(b *testing.B, groups int) {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	s := pim.New(st)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return at }
	if groups > 0 {
		s.Groups = func(id string) []string {
			out := make([]string, 0, groups)
			for j := range groups - 1 {
				out = append(out, fmt.Sprint(id, "-g", j)) // eligible for nothing
			}
			return append(out, "g-"+id)
		}
	}
	// A node sweeps when it starts.
	if _, _, err := s.Sweep(ctx); err != nil {
		b.Fatal(err)
	}
	admin := pim.Caller{ID: "admin", Admin: true}
	for i := range 1000 {
		principal := fmt.Sprint("u", i)
		if groups > 0 {
			principal = "g-" + principal
		}
		if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: principal, RoleDefinitionID: "Contributor",
			Scope: "/apps/payroll"}); err != nil {
			b.Fatal(err)
		}
	}
	d := pim.Duration(time.Hour)
	i := 0
	for b.Loop() {
		at = at.Add(2 * time.Hour) // the previous activation has ended
		r, err := s.Submit(ctx, pim.Caller{ID: fmt.Sprint("u", i%1000), MFA: true}, pim.Request{RequestType: pim.SelfActivate,
			RoleDefinitionID: "Contributor", Scope: "/apps/payroll", Justification: "bench",
			ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: &d}}})
		if err != nil || r.Status != pim.StatusProvisioned {
			b.Fatal(r.Status, err)
		}
		i++
	}
}
