package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// benchBody is a ~300-byte canonical JSON user.
var benchBody = []byte(`{"accountEnabled":true,"displayName":"Alice Example","givenName":"Alice","surname":"Example",` +
	`"userPrincipalName":"alice@example.com","mail":"alice@example.com","department":"Finance","jobTitle":"Analyst",` +
	`"usageLocation":"NL","userType":"Member","groups":["finance","all-staff"],"riskLevel":"none","` +
	strings.Repeat("x", 20) + `":1}`)

func benchOpen(b *testing.B, fresh func(testing.TB) string) store.Store {
	b.Helper()
	cfg := storetest.Config(fresh(b))
	cfg.MaxConns = 16
	cfg.ChangeRetention = store.DefaultChangeRetention
	s, err := store.Open(context.Background(), cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkStoreWrite measures one Update holding one Put, the unit of
// every admin write.
func BenchmarkStoreWrite(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := benchOpen(b, e.fresh)
			ctx := context.Background()
			b.SetBytes(int64(len(benchBody)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprint("u", i%1000)
				if _, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					return tx.Put(ctx, store.Object{Kind: "user", ID: id, Body: benchBody})
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStoreWriteParallel is BenchmarkStoreWrite from GOMAXPROCS
// goroutines at once: writers serialize on the revision, so this shows
// what queueing (and PostgreSQL's group commit) makes of it.
func BenchmarkStoreWriteParallel(b *testing.B) {
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := benchOpen(b, e.fresh)
			var n atomic.Int64
			b.SetBytes(int64(len(benchBody)))
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					id := fmt.Sprint("u", n.Add(1)%1000)
					if _, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
						return tx.Put(ctx, store.Object{Kind: "user", ID: id, Body: benchBody})
					}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkStoreList lists 10k objects of one kind: a full snapshot load
// (all) and one API page (page100).
func BenchmarkStoreList(b *testing.B) {
	const objects = 10000
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := benchOpen(b, e.fresh)
			ctx := context.Background()
			for start := 0; start < objects; start += 1000 {
				if _, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					for i := start; i < start+1000; i++ {
						if err := tx.Put(ctx, store.Object{Kind: "user", ID: fmt.Sprintf("u%05d", i), Body: benchBody}); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("all", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					objs, err := s.List(ctx, "user", store.ListOptions{})
					if err != nil || len(objs) != objects {
						b.Fatalf("List: %d objects, %v", len(objs), err)
					}
				}
			})
			b.Run("page100", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					objs, err := s.List(ctx, "user", store.ListOptions{AfterID: "u05000", Limit: 100})
					if err != nil || len(objs) != 100 {
						b.Fatalf("List: %d objects, %v", len(objs), err)
					}
				}
			})
		})
	}
}
