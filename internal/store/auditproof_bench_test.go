package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// BenchmarkAuditProofs measures inclusion and consistency proofs of a
// tree of VERITY_BENCH_AUDIT_LEAVES leaves (default 10,000,000) read from
// the stored tiles of each engine, against random leaves and sizes, and
// reports p50 and p99. Building the tree takes a minute or two per engine.
func BenchmarkAuditProofs(b *testing.B) {
	size := uint64(10_000_000)
	if v := os.Getenv("VERITY_BENCH_AUDIT_LEAVES"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			ctx := context.Background()
			st := storetest.OpenDSN(b, e.fresh(b))
			start := time.Now()
			const chunk = 1 << 16
			hashes := make([][]byte, 0, chunk)
			var buf [8]byte
			for i := uint64(0); i < size; {
				hashes = hashes[:0]
				for ; i < size && len(hashes) < chunk; i++ {
					binary.BigEndian.PutUint64(buf[:], i)
					h := sha256.Sum256(buf[:])
					hashes = append(hashes, h[:])
				}
				if err := store.AppendAuditLeafHashesForTest(ctx, st, hashes); err != nil {
					b.Fatal(err)
				}
			}
			head, err := st.AuditHead(ctx)
			if err != nil || head.Size != size {
				b.Fatalf("tree of %d leaves: %v", head.Size, err)
			}
			b.Logf("%s: a tree of %d leaves built in %v", e.name, size, time.Since(start).Round(time.Second))
			rng := rand.New(rand.NewPCG(1, 2))
			prover := audit.NewProver(st) // as a node's Log keeps one
			measure := func(b *testing.B, prove func() error) {
				var lat []time.Duration
				for b.Loop() {
					t0 := time.Now()
					if err := prove(); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
			b.Run("inclusion", func(b *testing.B) {
				var idx uint64
				var p [][]byte
				measure(b, func() (err error) {
					idx = rng.Uint64N(size)
					p, err = prover.Inclusion(ctx, idx, size)
					return err
				})
				binary.BigEndian.PutUint64(buf[:], idx)
				leaf := sha256.Sum256(buf[:])
				if err := audit.VerifyInclusion(idx, size, leaf[:], p, head.Root); err != nil {
					b.Fatal(err)
				}
			})
			b.Run("consistency", func(b *testing.B) {
				var from uint64
				var p [][]byte
				measure(b, func() (err error) {
					from = 1 + rng.Uint64N(size-1)
					p, err = prover.Consistency(ctx, from, size)
					return err
				})
				// The last proof, checked (not timed: a verifier has the
				// earlier root from its checkpoint).
				root1, err := audit.RootAt(ctx, st, from)
				if err != nil {
					b.Fatal(err)
				}
				if err := audit.VerifyConsistency(from, size, p, root1, head.Root); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
