package rbac

import (
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// benchWorld is the benchmark's tenant: 100k principals (90k users, 10k
// groups nested up to three deep), 1M role assignments over the 928+
// built-in roles and a few custom roles, on a scope tree six levels deep
// (/, subscription, resource group, storage account, container, blob).
type benchWorld struct {
	engine   *Engine
	users    []string
	groups   map[string][]string // user → transitive groups
	requests []Request
}

const (
	benchUsers       = 90_000
	benchGroups      = 10_000
	benchAssignments = 1_000_000
)

func (w *benchWorld) TransitiveMemberOf(id string) []string { return w.groups[id] }

// PrincipalIDs makes the world a PrincipalLister, as the directory is.
func (w *benchWorld) PrincipalIDs() iter.Seq[string] { return slices.Values(w.users) }

var benchOnce = sync.OnceValue(func() *benchWorld { return buildBenchWorld(false) })

// benchWindowedOnce is the same world with every fourth assignment
// time-bound (in force at benchNow, which its requests carry): what
// windows cost Check.
var benchWindowedOnce = sync.OnceValue(func() *benchWorld { return buildBenchWorld(true) })

// benchNow is the windowed world's request time.
var benchNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func buildBenchWorld(windowed bool) *benchWorld {
	rng := rand.New(rand.NewPCG(1, 2))
	guid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
	w := &benchWorld{groups: map[string][]string{}}
	groups := make([]string, benchGroups)
	for i := range groups {
		groups[i] = guid()
	}
	// Nesting: group i (i ≥ 100) is in group i/10 (a parent chain up to
	// three levels); a user is in 3 random groups and so in up to ~9.
	parents := func(g int) []int {
		var out []int
		for g >= 100 {
			g /= 10
			out = append(out, g)
		}
		return out
	}
	w.users = make([]string, benchUsers)
	for i := range w.users {
		w.users[i] = guid()
		var gs []string
		for range 3 {
			g := rng.IntN(benchGroups)
			gs = append(gs, groups[g])
			for _, p := range parents(g) {
				gs = append(gs, groups[p])
			}
		}
		slices.Sort(gs)
		w.groups[w.users[i]] = slices.Compact(gs)
	}
	principals := append(slices.Clone(w.users), groups...)

	// Scopes: 10 subscriptions × 10 resource groups × 10 accounts × 10
	// containers; requests go one level deeper, to a blob.
	scope := func(level int) string {
		s := fmt.Sprintf("/subscriptions/sub-%d", rng.IntN(10))
		if level > 1 {
			s += fmt.Sprintf("/resourceGroups/rg-%d", rng.IntN(10))
		}
		if level > 2 {
			s += fmt.Sprintf("/providers/Microsoft.Storage/storageAccounts/sa%d", rng.IntN(10))
		}
		if level > 3 {
			s += fmt.Sprintf("/blobServices/default/containers/c%d", rng.IntN(10))
		}
		return s
	}
	roles := BuiltinRoles()
	custom := []RoleDefinition{
		{Name: "11111111-1111-1111-1111-000000000001", RoleName: "Bench VM Operator", AssignableScopes: []string{"/"},
			Permissions: []Permission{{Actions: []string{"Microsoft.Compute/virtualMachines/*/action", "Microsoft.Compute/*/read"}, NotActions: []string{"Microsoft.Compute/virtualMachines/delete"}}}},
		{Name: "11111111-1111-1111-1111-000000000002", RoleName: "Bench Blob Reader", AssignableScopes: []string{"/subscriptions/sub-1"},
			Permissions: []Permission{{DataActions: []string{"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"}}}},
		{Name: "11111111-1111-1111-1111-000000000003", RoleName: "Bench Cost Query", AssignableScopes: []string{"/"},
			Permissions: []Permission{{Actions: []string{"Microsoft.CostManagement/*/query/*", "*/read"}}}},
	}
	common := []string{"Reader", "Contributor", "Owner", "Storage Blob Data Reader", "Storage Blob Data Contributor", "Virtual Machine Contributor", "Key Vault Secrets User"}
	as := make([]Assignment, 0, benchAssignments)
	for i := range benchAssignments {
		var role string
		switch r := rng.IntN(10); {
		case r < 6:
			role = common[rng.IntN(len(common))]
		case r < 7:
			role = custom[rng.IntN(2)].RoleName // the sub-1 one is skipped elsewhere: realistic noise
		default:
			role = roles[rng.IntN(len(roles))].Name
		}
		as = append(as, Assignment{ID: fmt.Sprintf("a-%d", i), PrincipalID: principals[rng.IntN(len(principals))],
			RoleDefinitionID: role, Scope: scope(1 + rng.IntN(4))})
		if windowed && i%4 == 0 {
			start, end := benchNow.Add(-time.Hour), benchNow.Add(time.Hour)
			as[i].StartDateTime, as[i].EndDateTime = &start, &end
		}
	}
	denies := []DenyAssignment{{ID: "d1", DenyAssignmentName: "protect sub-9", Scope: "/subscriptions/sub-9",
		Permissions: []Permission{{Actions: []string{"*/delete"}}}, Principals: []DenyPrincipal{{ID: EveryoneID, Type: "SystemDefined"}},
		ExcludePrincipals: []DenyPrincipal{{ID: groups[1], Type: "Group"}}}}
	e, err := Compile(custom, as, denies, Options{Principals: w})
	if err != nil {
		panic(err)
	}
	w.engine = e

	// Requests: users that hold an allowing assignment (the allow path),
	// at a blob below the assignment's scope.
	var res Decision
	for len(w.requests) < 4096 {
		u := w.users[rng.IntN(len(w.users))]
		r := Request{PrincipalID: u, Scope: scope(4) + "/blobs/b.txt"}
		if windowed {
			r.Now = benchNow
		}
		if rng.IntN(2) == 0 {
			r.Action = "Microsoft.Storage/storageAccounts/blobServices/containers/read"
		} else {
			r.Action, r.DataAction = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", true
		}
		e.Check(&r, &res)
		if res.Allowed {
			w.requests = append(w.requests, asParsed(r))
		}
	}
	return w
}

// asParsed gives r's strings one allocation of their own, as a policy
// enforcement point has them after reading a request: together, not
// scattered over the tenant's id strings. The engine's tables stay where
// the build left them, so its reads are as cold as a random tenant makes
// them.
func asParsed(r Request) Request {
	buf := r.PrincipalID + r.Action + r.Scope
	n, m := len(r.PrincipalID), len(r.PrincipalID)+len(r.Action)
	r.PrincipalID, r.Action, r.Scope = buf[:n], buf[n:m], buf[m:]
	return r
}

func BenchmarkCheck(b *testing.B) { benchmarkCheck(b, benchOnce()) }

// BenchmarkCheckWindowed is BenchmarkCheck where a quarter of the
// assignments have a window: the difference is what comparing windows with
// Request.Now costs.
func BenchmarkCheckWindowed(b *testing.B) { benchmarkCheck(b, benchWindowedOnce()) }

func benchmarkCheck(b *testing.B, w *benchWorld) {
	b.Logf("assignments %d (skipped %d), principals %d, scopes %d", w.engine.assignCount, len(w.engine.skipped), len(w.engine.principalNames), len(w.engine.scopeNames))
	var res Decision
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	runtime.GC() // the 1M-assignment build leaves garbage; do not time its collection
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := &w.requests[i%len(w.requests)]
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

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(timerOverhead().Nanoseconds()), "timer-ns")
}

// timerOverhead is the median latency the percentiles measure around an
// empty region: the clock reads included in each sample.
func timerOverhead() time.Duration {
	lat := make([]time.Duration, 10_000)
	for i := range lat {
		t0 := time.Now()
		lat[i] = time.Since(t0)
	}
	slices.Sort(lat)
	return lat[len(lat)/2]
}

func BenchmarkWhoCan(b *testing.B) {
	w := benchOnce()
	lat := make([]time.Duration, 0, 1024)
	n := 0
	runtime.GC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		req := &w.requests[i%len(w.requests)]
		t0 := time.Now()
		n = len(w.engine.WhoCan(req.Action, req.Scope, req.DataAction, req.Now))
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(n), "principals")
	reportPercentiles(b, lat)
}

// TestCheckAllowDoesNotAllocate guards the hot path on a small engine.
func TestCheckAllowDoesNotAllocate(t *testing.T) {
	e, err := Compile(nil, []Assignment{
		{ID: "a1", PrincipalID: "G1", RoleDefinitionID: "Contributor", Scope: "/subscriptions/S"},
		{ID: "a2", PrincipalID: "u1", RoleDefinitionID: "Storage Blob Data Reader", Scope: "/subscriptions/s/resourceGroups/rg"},
	}, []DenyAssignment{{ID: "d", Scope: "/subscriptions/s", Permissions: []Permission{{Actions: []string{"*/delete"}}},
		Principals: []DenyPrincipal{{ID: EveryoneID, Type: "SystemDefined"}}, ExcludePrincipals: []DenyPrincipal{{ID: "g2"}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []Request{
		{PrincipalID: "U1", Groups: []string{"g1"}, Action: "Microsoft.Compute/virtualMachines/write", Scope: "/subscriptions/s/resourceGroups/RG/providers/x/y/z"},
		{PrincipalID: "u1", Groups: []string{}, Action: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read", DataAction: true, Scope: "/subscriptions/s/resourceGroups/rg/a"},
	}
	var res Decision
	for _, r := range reqs {
		e.Check(&r, &res)
		if !res.Allowed {
			t.Fatalf("%+v: %v", r, res.Reason)
		}
		if n := testing.AllocsPerRun(100, func() { e.Check(&r, &res) }); n != 0 {
			t.Errorf("%s: %v allocs", r.Action, n)
		}
	}
}
