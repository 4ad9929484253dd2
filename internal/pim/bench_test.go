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
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	s := pim.New(st)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return at }
	admin := pim.Caller{ID: "admin", Admin: true}
	for i := range 1000 {
		if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: fmt.Sprint("u", i), RoleDefinitionID: "Contributor",
			Scope: "/apps/payroll"}); err != nil {
			b.Fatal(err)
		}
	}
	d := pim.Duration(time.Hour)
	i := 0
	for b.Loop() {
		at = at.Add(2 * time.Hour) // the previous activation has ended
		if _, err := s.Submit(ctx, pim.Caller{ID: fmt.Sprint("u", i%1000), MFA: true}, pim.Request{RequestType: pim.SelfActivate,
			RoleDefinitionID: "Contributor", Scope: "/apps/payroll", Justification: "bench",
			ScheduleInfo: pim.Schedule{Expiration: pim.Expiration{Duration: &d}}}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
