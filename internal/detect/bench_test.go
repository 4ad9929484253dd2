package detect

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// stream makes n sign-ins of users (of nUsers) from addresses (of 65,536),
// one every 10 ms of event time: 90% successes, 8% wrong passwords, 2%
// denied second factors — a busy tenant's day, no attack.
func stream(n, nUsers int) []SignIn {
	out := make([]SignIn, n)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	users := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user%07d@contoso.com", i)
	}
	for i := range out {
		u := (i * 7919) % nUsers
		ip := netip.AddrFrom4([4]byte{10, byte(u >> 8), byte(u), 1})
		code := 0
		switch i % 50 {
		case 1, 2, 3, 4:
			code = codeWrongPassword
		case 5:
			code = codeMFADenied
		}
		out[i] = SignIn{Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), ID: "e", User: users[u], UserID: users[u], IP: ip,
			Code: code, Success: code == 0, Interactive: true}
	}
	return out
}

// BenchmarkDetectors measures sign-ins through every default detector on
// one goroutine (run with -cpu 1): ns per event and events/s.
func BenchmarkDetectors(b *testing.B) {
	const users = 1_000_000
	evs := stream(2_000_000, users)
	b.Run("throughput", func(b *testing.B) {
		ds := DefaultDetectors()
		raise := func(Alert) {}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s := &evs[i%len(evs)]
			for _, d := range ds {
				d.Observe(s, raise)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkDetectorMemory reports the heap the detectors hold per user
// after a stream of 2,000,000 sign-ins of 1,000,000 users (run with
// -benchtime 1x).
func BenchmarkDetectorMemory(b *testing.B) {
	const users = 1_000_000
	evs := stream(2_000_000, users)
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ds := DefaultDetectors()
			for i := range evs {
				for _, d := range ds {
					d.Observe(&evs[i], func(Alert) {})
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/users, "heap-bytes/user")
			runtime.KeepAlive(ds)
		}
	})
}
