package jit_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/jit"
	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store/storetest"
)

// benchGate compiles policies protecting port 443 of n applications, each
// open to one address, and port 443 of one more application open to 100
// addresses.
func benchGate(n int, now time.Time) (*jit.Gate, string) {
	var policies []jit.Policy
	var requests []jit.Request
	port := jit.Port{Number: 443, Protocol: "*", AllowedSourceAddressPrefix: "*", MaxRequestAccessDuration: schedule.Duration(3 * time.Hour)}
	for i := range n + 1 {
		app := fmt.Sprintf("/apps/%08x-0000-4000-8000-000000000000", i)
		policies = append(policies, jit.Policy{Name: fmt.Sprintf("p%d", i), Properties: jit.Properties{VirtualMachines: []jit.Resource{{ID: app, Ports: []jit.Port{port}}}}})
		grants := 1
		if i == n {
			grants = 100
		}
		for g := range grants {
			src := netip.AddrFrom4([4]byte{10, byte(g >> 8), byte(g), byte(i)}).String()
			requests = append(requests, jit.Request{ID: fmt.Sprintf("r%d-%d", i, g), Policy: fmt.Sprintf("p%d", i), VirtualMachines: []jit.RequestResource{{ID: app,
				Ports: []jit.RequestPort{{Number: 443, AllowedSourceAddressPrefix: src, EndTimeUtc: now.Add(time.Hour), Status: jit.StatusInitiated}}}}})
		}
	}
	return jit.Compile(policies, requests), fmt.Sprintf("%08x-0000-4000-8000-000000000000", n)
}

// BenchmarkGate is the proxy's question on every request: is this
// application's port open to this address now — for an unguarded
// application, and for a guarded one open to 100 sources, from the last
// of them and from an address none names.
func BenchmarkGate(b *testing.B) {
	now := time.Now()
	g, busy := benchGate(10000, now)
	for _, bc := range []struct {
		name, app string
		addr      netip.Addr
		open      bool
	}{
		{"noPolicies", "ffffffff-0000-4000-8000-000000000000", netip.MustParseAddr("192.0.2.1"), true},
		{"unguarded", "ffffffff-0000-4000-8000-000000000000", netip.MustParseAddr("192.0.2.1"), true},
		{"open", busy, netip.AddrFrom4([4]byte{10, 0, 99, byte(10000 % 256)}), true},
		{"closed", busy, netip.MustParseAddr("192.0.2.1"), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				gate := g
				if bc.name == "noPolicies" {
					gate = jit.Empty
				}
				if gate.App(bc.app, 443, bc.addr, now).Open != bc.open {
					b.Fatal("wrong answer")
				}
			}
		})
	}
}

// BenchmarkLoad is the snapshot's share: reading and compiling 1,000
// policies and 1,000 open requests from SQLite.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	s := jit.New(st)
	admin := jit.Caller{ID: "admin", Address: netip.MustParseAddr("10.0.0.1"), May: func(string, string) bool { return true }}
	port := jit.Port{Number: 443, Protocol: "*", AllowedSourceAddressPrefix: "*", MaxRequestAccessDuration: schedule.Duration(3 * time.Hour)}
	for i := range 1000 {
		app := fmt.Sprintf("/apps/%08x-0000-4000-8000-000000000000", i)
		name := fmt.Sprintf("p%d", i)
		if _, _, _, err := s.PutPolicy(ctx, admin, jit.Policy{Name: name, Properties: jit.Properties{VirtualMachines: []jit.Resource{{ID: app, Ports: []jit.Port{port}}}}}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Initiate(ctx, admin, name, jit.InitiateRequest{VirtualMachines: []jit.InitiateResource{{ID: app,
			Ports: []jit.InitiatePort{{Number: 443, EndTimeUtc: time.Now().Add(time.Hour)}}}}}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, err := jit.Load(ctx, st, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInitiate is one request on SQLite, with 1,000 requests by
// others already open under the same policy.
func BenchmarkInitiate(b *testing.B) {
	ctx := context.Background()
	st := storetest.OpenSQLite(b)
	s := jit.New(st)
	const app = "/apps/6f1c2a84-2b1e-4a8e-9d53-0f2d7a1c9e10"
	may := func(string, string) bool { return true }
	port := jit.Port{Number: 443, Protocol: "*", AllowedSourceAddressPrefix: "*", MaxRequestAccessDuration: schedule.Duration(3 * time.Hour)}
	if _, _, _, err := s.PutPolicy(ctx, jit.Caller{ID: "admin", May: may}, jit.Policy{Name: "ops",
		Properties: jit.Properties{VirtualMachines: []jit.Resource{{ID: app, Ports: []jit.Port{port}}}}}); err != nil {
		b.Fatal(err)
	}
	ask := func(id string, i int) {
		in := jit.InitiateRequest{VirtualMachines: []jit.InitiateResource{{ID: app, Ports: []jit.InitiatePort{{Number: 443, EndTimeUtc: time.Now().Add(time.Hour)}}}}}
		c := jit.Caller{ID: id, Address: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), May: may}
		if _, _, err := s.Initiate(ctx, c, "ops", in); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 1000 {
		ask(fmt.Sprintf("user%d", i), i)
	}
	i := 0
	for b.Loop() {
		ask("alice", i) // each replaces alice's previous one
		i++
	}
}
