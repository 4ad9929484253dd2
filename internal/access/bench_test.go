package access

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/access/devicefilter"
	"github.com/verityhq/verity/internal/directory"
)

// world is a synthetic tenant: users in nested groups, some with admin
// roles, named locations, and policies shaped like the public ones.
type world struct {
	users    []string
	groupIDs []string
	parent   []int   // parent[g] is the group g is nested in, or -1
	direct   [][]int // direct[u] lists the groups user u is a direct member of
	dir      *memDirectory
	engine   *Engine
	policies []*Policy
	opts     CompileOptions
	apps     []string
	prefixes []netip.Prefix // inside named locations
}

// memDirectory is a Principals over one precomputed map, like the
// directory snapshot's index of principals.
type memDirectory struct{ users map[string]*memUser }

type memUser struct {
	groups, roles []string
	guest         bool
}

func (d *memDirectory) TransitiveMemberOf(id string) []string { return d.user(id).groups }
func (d *memDirectory) DirectoryRoles(id string) []string     { return d.user(id).roles }
func (d *memDirectory) IsGuest(id string) bool                { return d.user(id).guest }

func (d *memDirectory) Principal(id string) ([]string, []string, bool) {
	u := d.user(id)
	return u.groups, u.roles, u.guest
}

var noUser memUser

func (d *memDirectory) user(id string) *memUser {
	if u := d.users[id]; u != nil {
		return u
	}
	return &noUser
}

func guid(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff)
}

// adminRoles are the 14 roles Microsoft's "MFA for admins" template names.
var adminRoles = []string{"62e90394-69f5-4237-9190-012177145e10", "194ae4cb-b126-40b2-bd5b-6091b380977d",
	"f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "29232cdf-9323-42fd-ade2-1d097af3e4de", "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
	"729827e3-9c14-49f7-bb1b-9608f156bbb8", "b0f54661-2d74-4c50-afa3-1ec803f12efe", "fe930be7-5e62-47db-91af-98c3a49a38b1",
	"c4e39bd9-1100-46d3-8c65-fb160da0071f", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "158c047a-c907-4556-b7ef-446551a6b5f7",
	"966707d0-3269-4727-9be2-8c3a10f19b9d", "7be44c8a-adaf-4e2a-84d6-ab2649e08a13", "e8611ab8-c189-46e8-94e1-60213ab1f814"}

// newWorld builds a tenant of nUsers users and nGroups groups (about a
// third nested under another group) and nPolicies policies.
func newWorld(t testing.TB, nUsers, nGroups, nPolicies int) *world {
	t.Helper()
	r := rand.New(rand.NewPCG(42, 7))
	w := &world{dir: &memDirectory{users: map[string]*memUser{}}}

	groups := make([]string, nGroups)
	parent := make([]int, nGroups)
	for i := range groups {
		groups[i] = guid(r)
		parent[i] = -1
		if i > 20 && r.IntN(3) == 0 {
			parent[i] = r.IntN(i) // nest under an earlier group
		}
	}
	// Users: 4 to 16 direct groups, skewed towards the first (large) ones;
	// transitive groups through the parent chains.
	seen := make([]bool, nGroups)
	for range nUsers {
		id := guid(r)
		w.users = append(w.users, id)
		var trans []string
		var touched []int
		var direct []int
		for range 4 + r.IntN(13) {
			g := int(float64(nGroups) * r.Float64() * r.Float64())
			direct = append(direct, g)
			for ; g >= 0 && !seen[g]; g = parent[g] {
				seen[g] = true
				touched = append(touched, g)
				trans = append(trans, groups[g])
			}
		}
		for _, g := range touched {
			seen[g] = false
		}
		slices.Sort(trans)
		w.direct = append(w.direct, direct)
		u := &memUser{groups: trans, guest: r.IntN(20) == 0}
		if r.IntN(50) == 0 {
			u.roles = []string{adminRoles[r.IntN(len(adminRoles))]}
		}
		w.dir.users[id] = u
	}

	w.groupIDs, w.parent = groups, parent

	// Named locations: 20 IP locations of 40 ranges, a few trusted, and 5
	// country lists.
	var locs []directory.NamedLocation
	var ipLocs, ctryLocs []string
	for i := range 20 {
		l := directory.NamedLocation{ODataType: directory.ODataIPNamedLocation, ID: guid(r), DisplayName: fmt.Sprintf("site %d", i), IsTrusted: i < 4}
		for range 40 {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(11 + r.IntN(200)), byte(r.IntN(256)), byte(r.IntN(256)), 0}), 24)
			l.IPRanges = append(l.IPRanges, directory.IPRange{CIDRAddress: p.String()})
			w.prefixes = append(w.prefixes, p)
		}
		locs = append(locs, l)
		ipLocs = append(ipLocs, l.ID)
	}
	countries := []string{"US", "NL", "BE", "DE", "FR", "GB", "JP", "BR", "IN", "CN"}
	for i := range 5 {
		l := directory.NamedLocation{ODataType: directory.ODataCountryNamedLocation, ID: guid(r), DisplayName: fmt.Sprintf("countries %d", i),
			CountriesAndRegions: []string{countries[r.IntN(len(countries))], countries[r.IntN(len(countries))]}}
		locs = append(locs, l)
		ctryLocs = append(ctryLocs, l.ID)
	}

	groupsOpt := appGroups(t)
	w.apps = append(slices.Clone(groupsOpt[Office365][:20]), groupsOpt[MicrosoftAdminPortals]...)
	for range 20 {
		w.apps = append(w.apps, guid(r))
	}

	// Policies, in the proportions of the public sets.
	pickGroups := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = groups[r.IntN(min(nGroups, 200))] // policies name the larger groups
		}
		return out
	}
	breakGlass := pickGroups(2)
	var ps []*Policy
	for i := range nPolicies {
		p := &Policy{ID: guid(r), DisplayName: fmt.Sprintf("policy %d", i), State: StateEnabled}
		if r.IntN(6) == 0 {
			p.State = StateReportOnly
		}
		u := &Users{ExcludeGroups: breakGlass}
		a := &Applications{IncludeApplications: []string{All}}
		c := &p.Conditions
		c.Users, c.Applications = u, a
		g := &GrantControls{Operator: "OR", BuiltInControls: []string{"mfa"}}
		switch k := r.IntN(20); {
		case k < 5: // MFA for groups
			u.IncludeGroups = pickGroups(1 + r.IntN(3))
			u.ExcludeGroups = append(slices.Clone(breakGlass), pickGroups(1)...)
		case k < 8: // admins
			u.IncludeRoles = adminRoles[:5+r.IntN(9)]
			if r.IntN(2) == 0 {
				g = &GrantControls{Operator: "OR", AuthenticationStrength: &AuthenticationStrength{ID: StrengthPhishingResistant}}
			}
		case k < 11: // specific apps
			u.IncludeUsers = []string{All}
			a.IncludeApplications = []string{w.apps[r.IntN(len(w.apps))], w.apps[r.IntN(len(w.apps))]}
			if r.IntN(3) == 0 {
				a.IncludeApplications = []string{Office365}
			}
			if r.IntN(2) == 0 {
				g = &GrantControls{Operator: "OR", BuiltInControls: []string{"compliantDevice", "domainJoinedDevice"}}
			}
		case k < 13: // block outside locations
			u.IncludeUsers = []string{All}
			c.Locations = &Locations{IncludeLocations: []string{All}, ExcludeLocations: []string{AllTrusted, ctryLocs[r.IntN(len(ctryLocs))]}}
			if r.IntN(2) == 0 {
				c.Locations = &Locations{IncludeLocations: []string{ipLocs[r.IntN(len(ipLocs))], ctryLocs[r.IntN(len(ctryLocs))]}}
			}
			g = &GrantControls{Operator: "OR", BuiltInControls: []string{"block"}}
		case k < 15: // legacy authentication
			u.IncludeUsers = []string{All}
			c.ClientAppTypes = []string{"exchangeActiveSync", "other"}
			g = &GrantControls{Operator: "OR", BuiltInControls: []string{"block"}}
		case k < 16: // unknown platforms
			u.IncludeGroups = pickGroups(1)
			c.Platforms = &Platforms{IncludePlatforms: []string{"all"}, ExcludePlatforms: []string{"android", "iOS", "windows", "macOS"}}
			g = &GrantControls{Operator: "OR", BuiltInControls: []string{"block"}}
		case k < 17: // risk
			u.IncludeUsers = []string{All}
			if r.IntN(2) == 0 {
				c.SignInRiskLevels = []string{"high", "medium"}
			} else {
				c.UserRiskLevels = []string{"high"}
				g = &GrantControls{Operator: "AND", BuiltInControls: []string{"mfa", "passwordChange"}}
				u.ExcludeGroups = nil
			}
		case k < 18: // unmanaged devices: sign-in frequency
			u.IncludeGroups = pickGroups(1)
			c.Devices = &Devices{DeviceFilter: &Filter{Mode: "exclude", Rule: `device.deviceOwnership -eq "Company" -or device.isCompliant -eq True`}}
			g = nil
			p.SessionControls = &SessionControls{SignInFrequency: &SignInFrequency{IsEnabled: true, Type: "hours", Value: 12}}
		default: // guests
			u.IncludeGuestsOrExternalUsers = &ExternalUsers{GuestOrExternalUserTypes: "internalGuest,b2bCollaborationGuest,b2bCollaborationMember",
				ExternalTenants: &ExternalTenants{MembershipKind: "all"}}
		}
		p.GrantControls = g
		ps = append(ps, p)
	}
	w.policies, w.opts = ps, CompileOptions{NamedLocations: locs, AppGroups: groupsOpt}
	e, err := Compile(ps, w.opts)
	if err != nil {
		t.Fatal(err)
	}
	w.engine = e
	return w
}

// snapshot builds the world's users, groups and role assignments into a
// directory snapshot.
func (w *world) snapshot(t testing.TB) *directory.Snapshot {
	t.Helper()
	members := make([][]string, len(w.groupIDs))
	var objs objects
	for i, id := range w.users {
		mu := w.dir.users[id]
		u := &directory.User{ID: id, UserPrincipalName: fmt.Sprintf("user%d@contoso.com", i), DisplayName: fmt.Sprintf("User %d", i)}
		if mu.guest {
			u.UserType = directory.UserTypeGuest
		}
		u.Normalize()
		objs = append(objs, must(directory.Users.Object(u)))
		for _, g := range w.direct[i] {
			members[g] = append(members[g], id)
		}
		for j, role := range mu.roles {
			a := &directory.RoleAssignment{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, j), PrincipalID: id, RoleDefinitionID: role}
			a.Normalize()
			objs = append(objs, must(directory.RoleAssignments.Object(a)))
		}
	}
	for g, p := range w.parent {
		if p >= 0 {
			members[p] = append(members[p], w.groupIDs[g])
		}
	}
	for g, id := range w.groupIDs {
		m := members[g]
		slices.Sort(m)
		grp := &directory.Group{GraphGroup: directory.GraphGroup{ID: id, DisplayName: fmt.Sprintf("Group %d", g)}, Members: slices.Compact(m)}
		grp.Normalize()
		objs = append(objs, must(directory.Groups.Object(grp)))
	}
	snap, err := directory.Build(context.Background(), objs, 1)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// requests draws n sign-ins over the world's users.
func (w *world) requests(n int) []Request {
	r := rand.New(rand.NewPCG(9, 9))
	countries := []string{"", "US", "NL", "BE", "JP"}
	out := make([]Request, n)
	for i := range out {
		req := Request{UserID: w.users[r.IntN(len(w.users))], Applications: []string{w.apps[r.IntN(len(w.apps))]},
			ClientApp: ClientApp(1 + r.IntN(int(numClientApps)-1)), Platform: Platform(1 + r.IntN(int(numPlatforms)-1)),
			Country: countries[r.IntN(len(countries))], Now: time.Unix(1_800_000_000, 0)}
		req.SignInTime = req.Now.Add(-time.Duration(r.IntN(48)) * time.Hour)
		if r.IntN(2) == 0 {
			p := w.prefixes[r.IntN(len(w.prefixes))]
			a := p.Addr().As4()
			a[3] = byte(r.IntN(256))
			req.IP = netip.AddrFrom4(a)
		} else {
			req.IP = netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		if r.IntN(10) == 0 {
			req.SignInRisk = RiskLevel(1 + r.IntN(3))
		}
		switch r.IntN(3) {
		case 0:
			req.Device = &devicefilter.Device{}
		case 1:
			req.Device = &devicefilter.Device{Registered: true, IsCompliant: boolPtr(r.IntN(2) == 0), DeviceOwnership: "Company", TrustType: "AzureAD"}
		}
		if r.IntN(2) == 0 {
			req.Satisfied = ControlMFA
			req.Methods = MethodPassword | MethodMicrosoftAuthenticatorPush
		}
		out[i] = req
	}
	return out
}

// TestEvaluateAllocs: once a Result has been used, Evaluate (with Resolve)
// does not allocate; a fresh Result costs itself and its slices.
func TestEvaluateAllocs(t *testing.T) {
	w := newWorld(t, 2000, 300, 200)
	reqs := w.requests(256)
	var res Result
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		req := &reqs[i%len(reqs)]
		i++
		req.Resolve(w.dir)
		w.engine.Evaluate(req, &res)
	})
	if allocs > 1 {
		t.Errorf("Evaluate allocates %.2f times per call; want at most 1", allocs)
	}
	fresh := testing.AllocsPerRun(100, func() {
		var r Result
		w.engine.Evaluate(&reqs[0], &r)
	})
	if fresh > 5 {
		t.Errorf("Evaluate into a new Result allocates %.2f times; want at most 5", fresh)
	}
}

// BenchmarkEvaluate: 200 policies, 100k users in 5k nested groups, requests
// sampled over the users. "resolve-snapshot" includes Request.Resolve from
// a real directory.Snapshot of that tenant, as an enforcement point pays
// it; "resolve" the same from a one-map Principals; "evaluate" starts from
// resolved requests.
// Besides ns/op each reports the median and 99th percentile of single
// calls (each timed, so they include two clock reads of ~25 ns) and
// calls per second (per core with -cpu 1).
func BenchmarkEvaluate(b *testing.B) {
	w := newWorld(b, 100_000, 5_000, 200)
	reqs := w.requests(1 << 14)
	var res Result
	applied, groups := 0, 0
	for i := range reqs {
		reqs[i].Resolve(w.dir)
		w.engine.Evaluate(&reqs[i], &res) // warm the Result
		groups += len(reqs[i].Groups)
		for _, p := range res.Policies {
			if p.Applies {
				applied++
			}
		}
	}
	b.Logf("%d policies (%d report-only); requests: %.1f transitive groups, %.1f applying policies on average",
		len(w.engine.Policies()), len(w.engine.Policies())-countEnforced(w.engine), float64(groups)/float64(len(reqs)), float64(applied)/float64(len(reqs)))
	snap := SnapshotPrincipals{w.snapshot(b)}
	for _, bench := range []struct {
		name string
		dir  Principals
	}{{"resolve-snapshot", snap}, {"resolve", w.dir}, {"evaluate", nil}} {
		resolve := bench.dir != nil
		b.Run(bench.name, func(b *testing.B) {
			samples := make([]int64, 1<<20)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				req := &reqs[n&(len(reqs)-1)]
				start := time.Now()
				if resolve {
					req.Resolve(bench.dir)
				}
				w.engine.Evaluate(req, &res)
				samples[n&(len(samples)-1)] = int64(time.Since(start))
				n++
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
			s := samples[:min(n, len(samples))]
			slices.Sort(s)
			b.ReportMetric(float64(s[len(s)/2]), "p50-ns")
			b.ReportMetric(float64(s[len(s)*99/100]), "p99-ns")
		})
	}
}

func countEnforced(e *Engine) int {
	n := 0
	for _, p := range e.Policies() {
		if p.State == StateEnabled {
			n++
		}
	}
	return n
}

// BenchmarkEvaluateParallel runs the same load on every core.
func BenchmarkEvaluateParallel(b *testing.B) {
	w := newWorld(b, 100_000, 5_000, 200)
	reqs := w.requests(1 << 14)
	for i := range reqs {
		reqs[i].Resolve(w.dir)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var res Result
		i := rand.IntN(len(reqs))
		for pb.Next() {
			req := reqs[i&(len(reqs)-1)] // a copy: Resolve writes it
			i++
			req.Resolve(w.dir)
			w.engine.Evaluate(&req, &res)
		}
	})
}

// BenchmarkCompile compiles the 200 policies with 25 named locations.
func BenchmarkCompile(b *testing.B) {
	w := newWorld(b, 1000, 5_000, 200)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(w.policies, w.opts); err != nil {
			b.Fatal(err)
		}
	}
}
