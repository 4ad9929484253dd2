package pim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/store/storetest"
)

// BenchmarkNotify measures PIM events notified per second: steps already
// in the audit log on SQLite (administrators' new eligibilities), each
// read, looked up — the request, the role's settings, the administrators
// and the directory — and posted, signed, to every webhook of the role on
// 127.0.0.1, waiting for each answer.
func BenchmarkNotify(b *testing.B) {
	for _, hooks := range []int{1, 3} {
		b.Run(fmt.Sprintf("webhooks=%d", hooks), func(b *testing.B) {
			ctx := context.Background()
			st := storetest.OpenSQLite(b)
			s := pim.New(st)
			dir := notifyDirectory(b, st)
			var urls []string
			for range hooks {
				// A receiver that only reads: the figure is the notifier's.
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusNoContent)
				}))
				b.Cleanup(srv.Close)
				urls = append(urls, srv.URL)
			}
			setRoleNotify(b, s, pim.DefaultPolicy(), urls...)
			n := startNotifier(b, st, dir, newWebhookSecret(b), nil)
			admin := pim.Caller{ID: "root", Admin: true}
			for i := range b.N {
				if _, err := s.Submit(ctx, admin, pim.Request{RequestType: pim.AdminAssign, PrincipalID: fmt.Sprint("u", i),
					RoleDefinitionID: contributor, Scope: scope}); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			start := time.Now()
			done := 0
			for done < b.N {
				c, err := n.Step(ctx)
				if err != nil || c == 0 {
					b.Fatalf("step after %d events: %d %v", done, c, err)
				}
				done += c
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
