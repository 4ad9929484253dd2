package cedarbench

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/rbac"
)

// Each benchmark decides the sampled requests in turn, timing every
// decision; besides ns/op and allocs/op it reports the p50 and p99 of
// those timings and evaluations per second. ns/op includes the two clock
// reads per decision (tens of ns).

type summary struct {
	name     string
	n        int
	p50, p99 time.Duration
	mean     time.Duration
	allocs   float64
}

var (
	summariesMu sync.Mutex
	summaries   = map[string]summary{}
)

func record(b *testing.B, name string, lat []time.Duration, total time.Duration, allocs uint64) {
	slices.Sort(lat)
	s := summary{name: name, n: len(lat), p50: lat[len(lat)/2], p99: lat[len(lat)*99/100],
		mean: total / time.Duration(len(lat)), allocs: float64(allocs) / float64(len(lat))}
	b.ReportMetric(float64(s.p50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(s.p99.Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(time.Second)/float64(s.mean), "evals/s")
	summariesMu.Lock()
	summaries[name] = s // the last (longest) run of each benchmark wins
	summariesMu.Unlock()
}

func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// BenchmarkCedar slices the policy set for the request's principal (its
// permits and its groups', plus every forbid) and calls cedar.Authorize.
func BenchmarkCedar(b *testing.B) {
	ds, c, _ := setup(b)
	n := len(ds.Requests)
	var s Slice
	lat := make([]time.Duration, 0, 1<<18)
	runtime.GC()
	b.ReportAllocs()
	m0 := mallocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		_, err := c.Allowed(i%n, &s)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	record(b, "Cedar", lat, time.Since(start), mallocs()-m0)
}

// BenchmarkVerity calls Engine.Check, which resolves the principal's
// groups through rbac.Principals, reusing one Decision.
func BenchmarkVerity(b *testing.B) {
	ds, _, v := setup(b)
	n := len(ds.Requests)
	var res rbac.Decision
	lat := make([]time.Duration, 0, 1<<22)
	runtime.GC()
	b.ReportAllocs()
	m0 := mallocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		v.Check(i%n, &res)
		lat = append(lat, time.Since(t0))
		i++
	}
	record(b, "Verity", lat, time.Since(start), mallocs()-m0)
}

func (s summary) String() string {
	return fmt.Sprintf("%-7s p50 %9s  p99 %9s  mean %9s  %10.0f evaluations/s  %7.1f allocs/op  (%d evaluations)",
		s.name+":", us(s.p50), us(s.p99), us(s.mean), float64(time.Second)/float64(s.mean), s.allocs, s.n)
}

func us(d time.Duration) string { return fmt.Sprintf("%.2fµs", float64(d.Nanoseconds())/1000) }

// TestMain prints a summary of the benchmarks that ran and, when both did,
// the ratio.
func TestMain(m *testing.M) {
	code := m.Run()
	if len(summaries) > 0 && fixture.ds != nil {
		ds, c := fixture.ds, fixture.cedar
		fmt.Printf("\n%d principals (%d users, %d groups), %d scopes, %d roles, %d assignments, %d deny assignments, %d sampled requests; GOMAXPROCS=%d, %s/%s, %s\n",
			len(ds.Principals), ds.Config.Users, ds.Config.Groups, len(ds.Scopes), len(ds.Roles), len(ds.Assignments), len(ds.Denies), len(ds.Requests),
			runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
		fmt.Printf("load: generate %v; Verity compile %v; Cedar %v (action expansion %v over %d operations, %d action-group edges; entities %v; policies %v)\n",
			fixture.genTime.Round(time.Millisecond), fixture.verLoad.Round(time.Millisecond), fixture.cedarLoad.Round(time.Millisecond),
			c.ExpandTime.Round(time.Millisecond), len(ds.Actions)+len(ds.DataActions), c.ActionParents,
			c.EntityTime.Round(time.Millisecond), c.PolicyTime.Round(time.Millisecond))
		if unsliced > 0 {
			fmt.Printf("Cedar without slicing (Authorize over all %d policies): %v per request\n", len(ds.Assignments)+len(ds.Denies), unsliced.Round(time.Microsecond))
		}
		for _, name := range []string{"Cedar", "Verity"} {
			if s, ok := summaries[name]; ok {
				fmt.Println(s)
			}
		}
		cs, okC := summaries["Cedar"]
		vs, okV := summaries["Verity"]
		if okC && okV {
			fmt.Printf("ratio Cedar/Verity: p50 %.0fx, p99 %.0fx, mean %.0fx\n",
				float64(cs.p50)/float64(vs.p50), float64(cs.p99)/float64(vs.p99), float64(cs.mean)/float64(vs.mean))
		}
	}
	os.Exit(code)
}
