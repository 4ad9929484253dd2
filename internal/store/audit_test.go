package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// TestAuditGroupCommit appends from many goroutines at once, interleaved
// with object writes: every append gets a distinct seq, every event is
// stored exactly once, and the writes are unaffected.
func TestAuditGroupCommit(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			s := storetest.OpenDSN(t, e.fresh(t))
			ctx := ctxFor(t)
			const workers, each = 16, 25
			var wg sync.WaitGroup
			seqs := make(chan int64, workers*each)
			errs := make(chan error, workers*each+each)
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						seq, err := s.AppendAudit(ctx, store.AuditEvent{Action: "test.append", Target: fmt.Sprintf("/w%d/%d", w, i), Result: "success"})
						if err != nil {
							errs <- err
							return
						}
						seqs <- seq
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
						return tx.Create(ctx, store.Object{Kind: "thing", ID: fmt.Sprintf("id-%03d", i), Body: []byte(`{}`)})
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
			wg.Wait()
			close(seqs)
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			seen := map[int64]bool{}
			for seq := range seqs {
				if seen[seq] || seq <= 0 {
					t.Fatalf("seq %d given twice or invalid", seq)
				}
				seen[seq] = true
			}
			evs, err := s.ListAudit(ctx, store.AuditQuery{Action: "test.append", Limit: store.MaxAuditLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != workers*each || len(seen) != workers*each {
				t.Fatalf("stored %d events, %d seqs; want %d", len(evs), len(seen), workers*each)
			}
			objs, err := s.List(ctx, "thing", store.ListOptions{})
			if err != nil || len(objs) != each {
				t.Fatalf("objects: %d, %v", len(objs), err)
			}
		})
	}
}

func BenchmarkAuditAppendParallel(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := storetest.OpenDSN(b, e.fresh(b))
			ev := store.AuditEvent{Action: "bench.append", Target: "/api/v1/users", Result: "success", Status: 200, Details: []byte(`{"method":"GET"}`)}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.AppendAudit(context.Background(), ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAuditAppendAsync measures queued appends (the path of token
// redemptions' sign-in records) with a details body of a sign-in event's
// size: events/s is what the group commit writes, counted once the last
// event is in the table.
func BenchmarkAuditAppendAsync(b *testing.B) {
	details := []byte(`{"id":"` + strings.Repeat("0", 36) + `","createdDateTime":"2026-11-26T22:10:44Z","userId":"",` +
		`"appId":"5c1a9e3b-7f2d-4b8e-a6c0-0d1e2f3a4b5c","appDisplayName":"Payroll API","ipAddress":"127.0.0.1",` +
		`"clientAppUsed":"","isInteractive":false,"servicePrincipalId":"` + strings.Repeat("1", 36) + `",` +
		`"status":{"errorCode":0},"conditionalAccessStatus":"notApplied","appliedConditionalAccessPolicies":[],` +
		`"signInEventTypes":["servicePrincipal"],"authenticationProtocol":"none","tokenIssuerType":"AzureAD"` +
		strings.Repeat(` `, 600) + `}`)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := storetest.OpenDSN(b, e.fresh(b))
			ctx := context.Background()
			ev := store.AuditEvent{Action: "bench.signIn", Target: "5c1a9e3b-7f2d-4b8e-a6c0-0d1e2f3a4b5c", Result: "success", Status: 200, Details: details}
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				for {
					err := s.AppendAuditAsync(ctx, ev)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrAuditBacklog) {
						b.Fatal(err)
					}
					time.Sleep(time.Millisecond) // the backlog drains
				}
			}
			// A waited append is written after every queued one.
			if _, err := s.AppendAudit(ctx, ev); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
