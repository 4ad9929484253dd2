package directory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Scale of the benchmark directory.
const (
	benchUsers       = 100_000
	benchGroups      = 10_000 // in benchLevels levels of nesting
	benchLevels      = 5
	benchApps        = 1_000 // each with a service principal
	benchLocations   = 50
	benchAssignments = 200
)

// benchDirectory is the generated directory, built once per test binary.
type benchDirectory struct {
	objs  []store.Object
	users []string // ids
	// groups[l] are the ids of groups at nesting level l (0 is the top).
	groups [][]string
}

var benchData = sync.OnceValue(func() *benchDirectory { return generateDirectory(1) })

// generateDirectory makes a directory with realistic shape: groups nested
// benchLevels deep, each group below the top in one or two groups of the
// level above; every user in 3 to 5 groups, mostly deep ones; a service
// principal per application; some IP locations and role assignments to
// users and role-assignable groups.
func generateDirectory(seed uint64) *benchDirectory {
	rng := rand.New(rand.NewPCG(seed, 7))
	d := &benchDirectory{groups: make([][]string, benchLevels)}
	guid := func(kind byte, n int) string {
		return fmt.Sprintf("%08x-%04x-4000-8000-%012x", rng.Uint32(), uint16(kind), n)
	}
	members := map[string][]string{}
	perLevel := benchGroups / benchLevels
	for l := range benchLevels {
		for i := range perLevel {
			g := guid('g', l*perLevel+i)
			d.groups[l] = append(d.groups[l], g)
			if l == 0 {
				continue
			}
			parents := 1
			if rng.IntN(10) < 3 {
				parents = 2
			}
			for range parents {
				p := d.groups[l-1][rng.IntN(perLevel)]
				members[p] = append(members[p], g)
			}
		}
	}
	var objs []store.Object
	add := func(r Resource) {
		r.Normalize()
		if err := r.Validate(); err != nil {
			panic(err)
		}
		for _, k := range Kinds() {
			if o, err := k.ObjectOf(r); err == nil {
				objs = append(objs, o)
				return
			}
		}
		panic(fmt.Sprintf("no kind for %T", r))
	}
	for i := range benchUsers {
		u := guid('u', i)
		d.users = append(d.users, u)
		for range 3 + rng.IntN(3) {
			l := benchLevels - 1 - min(rng.IntN(8), benchLevels-1)/2 // mostly the two deepest levels
			g := d.groups[l][rng.IntN(perLevel)]
			members[g] = append(members[g], u)
		}
		add(&User{ID: u, UserPrincipalName: fmt.Sprintf("user%06d@contoso.com", i), DisplayName: fmt.Sprintf("User %d", i),
			GivenName: "Given", Surname: fmt.Sprintf("Surname%d", i), Mail: fmt.Sprintf("user%06d@contoso.com", i),
			JobTitle: "Engineer", Department: "Department " + fmt.Sprint(i%50), UsageLocation: "NL"})
	}
	var assignable []string
	for l, level := range d.groups {
		for i, g := range level {
			ra := l == benchLevels-1 && i < 20
			if ra {
				assignable = append(assignable, g)
			}
			add(&Group{GraphGroup: GraphGroup{ID: g, DisplayName: fmt.Sprintf("Group %d-%d", l, i), Description: "Generated",
				IsAssignableToRole: ptr(ra)}, Members: members[g]})
		}
	}
	for i := range benchApps {
		appID := guid('a', i)
		add(&Application{ID: guid('p', i), AppID: appID, DisplayName: fmt.Sprintf("App %d", i), IdentifierURIs: []string{"api://app" + fmt.Sprint(i)}})
		add(&ServicePrincipal{ID: guid('s', i), AppID: appID, DisplayName: fmt.Sprintf("App %d", i)})
	}
	for i := range benchLocations {
		add(&NamedLocation{ODataType: ODataIPNamedLocation, ID: guid('l', i), DisplayName: fmt.Sprintf("Site %d", i), IsTrusted: i%2 == 0,
			IPRanges: []IPRange{{CIDRAddress: fmt.Sprintf("10.%d.0.0/16", i)}, {CIDRAddress: fmt.Sprintf("2001:db8:%x::/48", i)}}})
	}
	roles := BuiltinRoles()
	for i := range benchAssignments {
		principal := d.users[rng.IntN(benchUsers)]
		if i%4 == 0 {
			principal = assignable[rng.IntN(len(assignable))]
		}
		add(&RoleAssignment{ID: guid('r', i), PrincipalID: principal, RoleDefinitionID: roles[rng.IntN(len(roles))].ID})
	}
	d.objs = objs
	return d
}

// BenchmarkSnapshotBuild measures Build for 100k users, 10k groups nested
// five deep and 1k applications: "memory" is the compile cost (objects
// served from a slice), "sqlite" the whole build from a real SQLite store.
// Besides time and allocation it reports the heap the snapshot retains
// (snapshot-MB), the peak live heap during one build (peak-heap-MB) and
// the memory the runtime holds from the OS (sys-MB).
func BenchmarkSnapshotBuild(b *testing.B) {
	d := benchData()
	b.Run("memory", func(b *testing.B) {
		r := newMemReader(d.objs)
		benchmarkBuild(b, func(ctx context.Context) (*Snapshot, error) {
			return Build(ctx, r, 1)
		})
	})
	b.Run("sqlite", func(b *testing.B) {
		st := openStore(b)
		rev, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
			for _, o := range d.objs {
				if err := tx.Create(ctx, o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		benchmarkBuild(b, func(ctx context.Context) (*Snapshot, error) {
			var s *Snapshot
			err := st.View(ctx, func(ctx context.Context, r store.Reader, _ int64) error {
				var err error
				s, err = Build(ctx, r, rev)
				return err
			})
			return s, err
		})
	})
}

func benchmarkBuild(b *testing.B, build func(context.Context) (*Snapshot, error)) {
	ctx := context.Background()
	// One measured build outside the timer for the memory figures.
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := samplePeakHeap()
	s, err := build(ctx)
	peak := stop()
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := s.Stats(); st.Users != benchUsers || st.Groups != benchGroups {
		b.Fatalf("built %+v", st)
	}
	retained := float64(after.HeapInuse) - float64(before.HeapInuse)
	runtime.KeepAlive(s)
	s = nil

	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	n := 0
	for b.Loop() {
		if _, err := build(ctx); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	// CPU time (all threads, GC included) is steadier than wall time on a
	// shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(n), "cpu-ms/op")
	b.ReportMetric(retained/(1<<20), "snapshot-MB")
	b.ReportMetric(float64(peak-before.HeapAlloc)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(after.Sys)/(1<<20), "sys-MB")
}

// samplePeakHeap samples the live heap every millisecond, without
// stopping the world, until the returned function is called; that
// function returns the highest sample.
func samplePeakHeap() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	done := make(chan struct{})
	result := make(chan uint64)
	go func() {
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				result <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 { close(done); return <-result }
}

// benchSnapshot is the large snapshot the lookup benchmarks query.
var benchSnapshot = sync.OnceValues(func() (*Snapshot, error) {
	return Build(context.Background(), newMemReader(benchData().objs), 1)
})

func bigSnapshot(b *testing.B) *Snapshot {
	s, err := benchSnapshot()
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func BenchmarkTransitiveMemberOf(b *testing.B) {
	s, users := bigSnapshot(b), benchData().users
	total := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		total += len(s.TransitiveMemberOf(users[i%len(users)]))
		i++
	}
	b.ReportMetric(float64(total)/float64(i), "groups/op")
}

func BenchmarkInGroup(b *testing.B) {
	s, d := bigSnapshot(b), benchData()
	top := d.groups[0]
	hits := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if s.InGroup(d.users[i%len(d.users)], top[i%len(top)]) {
			hits++
		}
		i++
	}
	b.ReportMetric(float64(hits)/float64(i), "hit-ratio")
}

func BenchmarkDirectoryRoles(b *testing.B) {
	s, users := bigSnapshot(b), benchData().users
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = s.DirectoryRoles(users[i%len(users)])
		i++
	}
}

func BenchmarkInTrustedLocation(b *testing.B) {
	s := bigSnapshot(b)
	addrs := []netip.Addr{netip.MustParseAddr("10.20.1.2"), netip.MustParseAddr("10.21.1.2"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:4::1")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = s.InTrustedLocation(addrs[i%len(addrs)])
		i++
	}
}

func BenchmarkUserByUPN(b *testing.B) {
	s := bigSnapshot(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.UserByUPN("user054321@contoso.com"); !ok {
			b.Fatal("not found")
		}
	}
}
