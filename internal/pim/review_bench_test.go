package pim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// BenchmarkReviewStart measures starting an access review instance on
// SQLite over 10,000 role assignments of 10,000 users: the directory
// built from one view of the store, the assignments read and filtered,
// and the 10,000 decision items written with the instance and its audit
// record in one transaction. With recommendations, each user's last
// sign-in is also looked up in the audit log (half of them signed in).
func BenchmarkReviewStart(b *testing.B) {
	for _, recommend := range []bool{false, true} {
		b.Run(fmt.Sprintf("recommendations=%t", recommend), func(b *testing.B) {
			benchmarkReviewStart(b, 10000, recommend)
		})
	}
}

func benchmarkReviewStart(b *testing.B, n int, recommend bool) {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	svc := pim.New(st)
	svc.Now = func() time.Time { return at }
	rv := pim.NewReviews(svc, func(context.Context, store.Reader, string) error { return nil })
	created := at.AddDate(-1, 0, 0)
	for batch := 0; batch < n; batch += 1000 {
		if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			for i := batch; i < min(batch+1000, n); i++ {
				u := &directory.User{ID: uid(100000 + i), UserPrincipalName: fmt.Sprintf("user%d@contoso.com", i), DisplayName: fmt.Sprint("User ", i), CreatedDateTime: &created}
				u.Normalize()
				o, err := directory.Users.Object(u)
				if err != nil {
					return err
				}
				if err := tx.Put(ctx, o); err != nil {
					return err
				}
				a := rbac.Assignment{ID: uid(200000 + i), PrincipalID: u.ID, RoleDefinitionID: "Reader", Scope: fmt.Sprintf("/apps/app%d", i%100)}
				a.Normalize()
				body, _ := json.Marshal(a)
				if err := tx.Put(ctx, store.Object{Kind: rbac.Kind, ID: a.ID, Body: body}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	if recommend {
		// Half the users signed in within the month, the log reaching back
		// two months.
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for w := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n/2; i += 50 {
					t := at.Add(-time.Duration(i%600) * time.Hour)
					if i == 0 {
						t = at.AddDate(0, -2, 0)
					}
					if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: t, Actor: uid(100000 + i), Action: signin.AuditAction, Result: "success", Details: []byte(`{}`)}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	reviewer := &directory.User{ID: uid(1), UserPrincipalName: "rita@contoso.com", DisplayName: "Rita"}
	reviewer.Normalize()
	o, _ := directory.Users.Object(reviewer)
	if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Put(ctx, o) }); err != nil {
		b.Fatal(err)
	}
	def := pim.ReviewDefinition{DisplayName: "Everyone's access", Scope: pim.ReviewScope{ResourceScope: "/apps"}, Reviewers: []string{reviewer.ID},
		Settings: pim.ReviewSettings{Recurrence: pim.Recurrence{Type: pim.RecurOnetime, StartDate: at.Format(time.RFC3339)}, InstanceDurationInDays: 14,
			RecommendationsEnabled: recommend}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d, err := rv.Create(ctx, pim.Identity{ID: "admin"}, def)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if s, err := rv.Sweep(ctx); err != nil || s.Started != 1 {
			b.Fatalf("sweep %+v %v", s, err)
		}
		b.StopTimer()
		if sum := mustInstance(b, st, d.ID).Summary; sum == nil || sum.Items != n {
			b.Fatalf("items %+v", sum)
		}
		if err := rv.Delete(ctx, "admin", d.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n), "items/op")
}

func mustInstance(b *testing.B, st store.Store, defID string) pim.ReviewInstance {
	insts, err := pim.ReviewInstances(context.Background(), st, defID)
	if err != nil || len(insts) != 1 {
		b.Fatalf("instances %v %v", insts, err)
	}
	return insts[0]
}
