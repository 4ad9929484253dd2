package detect

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// auditStream makes n audit records about users (of nUsers), one every
// 10 ms of event time — a busy tenant's day, no attack: user updates,
// Key Vault secret reads by 50,000 callers, accounts created and (much
// later) deleted, non-privileged role assignments, methods registered,
// consents to User.Read, and now and then a client secret added.
func auditStream(n, nUsers int) []AuditRecord {
	out := make([]AuditRecord, n)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	users := make([]string, nUsers)
	for i := range users {
		users[i] = fmt.Sprintf("user%07d@contoso.com", i)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	for i := range out {
		u := (i * 7919) % nUsers
		r := AuditRecord{Time: t0.Add(time.Duration(i) * 10 * time.Millisecond), ID: "e", CorrelationID: "c", Success: true,
			Service: "Core Directory", InitiatorUPN: "admin@contoso.com", InitiatorIP: ip,
			Targets: []AuditTarget{{ID: users[u], Type: "User", UPN: users[u]}}}
		switch i % 20 {
		case 8, 9, 10, 11:
			r = auditSecretRead(r.Time, "e", fmt.Sprint("caller", u%50_000), "SecretGet", "")
		case 12:
			r.Operation = "Add user"
		case 13:
			r.Operation = "Delete user"
		case 14:
			r = auditRoleAdd(r.Time, "e", users[u], "Directory Readers", "88d8e3e3-8f55-4a1e-953a-9b9898b8876b")
		case 15:
			r.Operation = "User registered security info"
		case 16:
			r = auditGrant(r.Time, "e", fmt.Sprint("g", i), "AllPrincipals", "", "User.Read")
		case 17:
			if i%1000 == 17 {
				r = auditCredential(r.Time, "e", fmt.Sprint("k", i), fmt.Sprint("App", u%1000), auditKeys("k1"), auditKeys("k1", fmt.Sprint("k", i)))
			} else {
				r.Operation = "Update user"
			}
		default:
			r.Operation = "Update user"
		}
		out[i] = r
	}
	return out
}

// BenchmarkAuditDetectors measures audit records through every default
// audit detector on one goroutine (run with -cpu 1): ns per record and
// records/s.
func BenchmarkAuditDetectors(b *testing.B) {
	const users = 1_000_000
	recs := auditStream(2_000_000, users)
	b.Run("throughput", func(b *testing.B) {
		ds := DefaultAuditDetectors()
		raise := func(Alert) {}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r := &recs[i%len(recs)]
			for _, d := range ds {
				d.ObserveAudit(r, raise)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkAuditDetectorMemory reports the heap the audit detectors hold
// per user after 2,000,000 records about 1,000,000 users (run with
// -benchtime 1x).
func BenchmarkAuditDetectorMemory(b *testing.B) {
	const users = 1_000_000
	recs := auditStream(2_000_000, users)
	b.Run("memory", func(b *testing.B) {
		for b.Loop() {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ds := DefaultAuditDetectors()
			for i := range recs {
				for _, d := range ds {
					d.ObserveAudit(&recs[i], func(Alert) {})
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/users, "heap-bytes/user")
			runtime.KeepAlive(ds)
		}
	})
}
