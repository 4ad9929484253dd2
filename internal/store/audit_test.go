package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

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
