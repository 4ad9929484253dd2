package rbac

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkCheckGroupsGiven is BenchmarkCheck with each request's groups
// resolved before the timer starts (Request.Groups set), so that the
// difference between the two is what the Principals lookup (here the
// benchmark's map) costs a caller.
func BenchmarkCheckGroupsGiven(b *testing.B) {
	w := benchOnce()
	reqs := make([]Request, len(w.requests))
	for i, r := range w.requests {
		r.Groups = w.groups[r.PrincipalID]
		if r.Groups == nil {
			r.Groups = []string{}
		}
		reqs[i] = r
	}
	var res Decision
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := &reqs[i%len(reqs)]
		if i%16 == 0 && len(lat) < cap(lat) {
			t0 := time.Now()
			w.engine.Check(req, &res)
			lat = append(lat, time.Since(t0))
		} else {
			w.engine.Check(req, &res)
		}
		if !res.Allowed {
			b.Fatalf("request %d not allowed: %v", i, res.Reason)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkGroupLookup is the benchmark's Principals lookup alone, as
// BenchmarkCheck's requests make it.
func BenchmarkGroupLookup(b *testing.B) {
	w := benchOnce()
	var n int
	lat := make([]time.Duration, 0, 1<<16)
	runtime.GC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := &w.requests[i%len(w.requests)]
		if i%16 == 0 && len(lat) < cap(lat) {
			t0 := time.Now()
			gs := w.TransitiveMemberOf(req.PrincipalID)
			lat = append(lat, time.Since(t0))
			n += len(gs)
		} else {
			n += len(w.TransitiveMemberOf(req.PrincipalID))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(n)/float64(b.N), "groups/op")
	reportPercentiles(b, lat)
}

// BenchmarkCheckWarm checks the same 16 requests over and over, so that
// the engine's data they touch stays in cache: the difference from
// BenchmarkCheck is what cache misses cost.
func BenchmarkCheckWarm(b *testing.B) {
	w := benchOnce()
	reqs := w.requests[:16]
	var res Decision
	b.ReportAllocs()
	runtime.GC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w.engine.Check(&reqs[i%len(reqs)], &res)
		if !res.Allowed {
			b.Fatalf("request %d not allowed: %v", i, res.Reason)
		}
	}
}
