package directory

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store"
)

const (
	securityReaderRoleID   = "5d6b6bb7-de71-4623-b4af-96380a352509"
	directoryReadersRoleID = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
)

// fixture is a small directory with nesting, a diamond, a cycle, dangling
// ids and role assignments to users and groups:
//
//	g1 ⊃ g2, g3          g2 ⊃ u1, g4        g3 ⊃ u2, g4 (diamond)
//	g4 ⊃ u3, s1, x1 (dangling)             g5 ⊃ g6, u4; g6 ⊃ g5 (cycle)
//	g7 (role-assignable) ⊃ u5, g2          g8 (not role-assignable) ⊃ u4
func fixture(t *testing.T) []store.Object {
	t.Helper()
	u := func(n int, upn string, enabled bool) Resource {
		return &User{ID: id("u", n), UserPrincipalName: upn, DisplayName: upn, AccountEnabled: ptr(enabled)}
	}
	g := func(n int, name string, assignable bool, members ...string) Resource {
		return &Group{GraphGroup: GraphGroup{ID: id("g", n), DisplayName: name, IsAssignableToRole: ptr(assignable)}, Members: members}
	}
	ra := func(n int, principal, role string) Resource {
		return &RoleAssignment{ID: id("r", n), PrincipalID: principal, RoleDefinitionID: role}
	}
	resources := []Resource{
		u(1, "Alice@Contoso.com", true), u(2, "bob@contoso.com", true), u(3, "carol@contoso.com", true),
		u(4, "dave@contoso.com", false), u(5, "erin@contoso.com", true),
		&ServicePrincipal{ID: id("s", 1), AppID: id("a", 1), DisplayName: "Payroll"},
		&ServicePrincipal{ID: id("s", 2), AppID: id("a", 2), DisplayName: "Old", AccountEnabled: ptr(false)},
		&Application{ID: id("a", 9), AppID: id("a", 1), DisplayName: "Payroll"},
		g(1, "Everyone", false, id("g", 2), id("g", 3)),
		g(2, "Finance", false, id("u", 1), id("g", 4)),
		g(3, "Audit", false, id("u", 2), id("g", 4)),
		g(4, "Ledger", false, id("u", 3), id("s", 1), id("x", 1)),
		g(5, "Ring A", false, id("g", 6), id("u", 4)),
		g(6, "Ring B", false, id("g", 5)),
		g(7, "Security Admins", true, id("u", 5), id("g", 2)),
		g(8, "Readers", false, id("u", 4)),
		ra(1, id("u", 1), GlobalAdministratorRoleID),
		ra(2, id("g", 7), securityReaderRoleID),
		ra(3, id("g", 8), directoryReadersRoleID),
		ra(4, id("x", 2), GlobalAdministratorRoleID),
		ra(5, id("u", 1), GlobalAdministratorRoleID), // same role twice
		&NamedLocation{ODataType: ODataIPNamedLocation, ID: id("l", 1), DisplayName: "HQ", IsTrusted: true,
			IPRanges: []IPRange{{CIDRAddress: "192.0.2.0/24"}}},
		&NamedLocation{ODataType: ODataIPNamedLocation, ID: id("l", 2), DisplayName: "Guest Wi-Fi",
			IPRanges: []IPRange{{CIDRAddress: "198.51.100.0/24"}}},
		&NamedLocation{ODataType: ODataCountryNamedLocation, ID: id("l", 3), DisplayName: "Benelux", CountriesAndRegions: []string{"BE", "LU", "NL"}},
	}
	objs := make([]store.Object, len(resources))
	for i, r := range resources {
		objs[i] = object(t, r)
	}
	return objs
}

func ids(kind string, ns ...int) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = id(kind, n)
	}
	return out
}

func TestSnapshotMembership(t *testing.T) {
	t.Parallel()
	s := buildFromStore(t, fixture(t))
	join := func(lists ...[]string) []string { return slices.Concat(lists...) }
	tests := []struct {
		name      string
		principal string
		memberOf  []string
		transIn   []string
		roles     []string
	}{
		{"user in nested group", id("u", 1), ids("g", 2), ids("g", 1, 2, 7), []string{GlobalAdministratorRoleID}},
		{"user in diamond", id("u", 3), ids("g", 4), ids("g", 1, 2, 3, 4, 7), nil},
		{"service principal in diamond", id("s", 1), ids("g", 4), ids("g", 1, 2, 3, 4, 7), nil},
		{"group in diamond", id("g", 4), ids("g", 2, 3), ids("g", 1, 2, 3, 7), nil},
		{"top group", id("g", 1), nil, nil, nil},
		{"group in cycle", id("g", 5), ids("g", 6), ids("g", 6), nil},
		{"other group in cycle", id("g", 6), ids("g", 5), ids("g", 5), nil},
		{"user in cycle", id("u", 4), ids("g", 5, 8), ids("g", 5, 6, 8), nil},
		{"user in role-assignable group", id("u", 5), ids("g", 7), ids("g", 7), []string{securityReaderRoleID}},
		{"group in role-assignable group", id("g", 2), ids("g", 1, 7), ids("g", 1, 7), []string{securityReaderRoleID}},
		{"group with role, not assignable", id("g", 8), nil, nil, []string{directoryReadersRoleID}},
		{"dangling member id", id("x", 1), nil, nil, nil},
		{"unknown id", guidA, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := s.MemberOf(tt.principal); !slices.Equal(got, tt.memberOf) {
				t.Errorf("MemberOf = %v, want %v", got, tt.memberOf)
			}
			if got := s.TransitiveMemberOf(tt.principal); !slices.Equal(got, tt.transIn) {
				t.Errorf("TransitiveMemberOf = %v, want %v", got, tt.transIn)
			}
			for _, g := range ids("g", 1, 2, 3, 4, 5, 6, 7, 8) {
				if got, want := s.InGroup(tt.principal, g), slices.Contains(tt.transIn, g); got != want {
					t.Errorf("InGroup(%s) = %v, want %v", g, got, want)
				}
			}
			if got := s.DirectoryRoles(tt.principal); !slices.Equal(got, tt.roles) {
				t.Errorf("DirectoryRoles = %v, want %v", got, tt.roles)
			}
			for _, r := range []string{GlobalAdministratorRoleID, securityReaderRoleID, directoryReadersRoleID} {
				if got, want := s.HasDirectoryRole(tt.principal, r), slices.Contains(tt.roles, r); got != want {
					t.Errorf("HasDirectoryRole(%s) = %v, want %v", r, got, want)
				}
			}
		})
	}

	membersTests := []struct {
		group string
		want  []string
	}{
		{id("g", 1), join(ids("u", 1, 2, 3), ids("g", 2, 3, 4), ids("s", 1))},
		{id("g", 4), join(ids("u", 3), ids("s", 1))},
		{id("g", 5), join(ids("u", 4), ids("g", 6))},
		{id("g", 7), join(ids("u", 1, 3, 5), ids("g", 2, 4), ids("s", 1))},
		{id("u", 1), nil},
	}
	for _, tt := range membersTests {
		if got := s.TransitiveMembers(tt.group); !slices.Equal(got, tt.want) {
			t.Errorf("TransitiveMembers(%s) = %v, want %v", tt.group, got, tt.want)
		}
	}
	if got := s.Members(id("g", 4)); !slices.Equal(got, []string{id("u", 3), id("s", 1), id("x", 1)}) {
		t.Errorf("Members(g4) = %v (stored members, dangling included)", got)
	}

	cycleTests := []struct {
		group, member string
		want          bool
	}{
		{id("g", 4), id("g", 1), true},  // g4 is inside g1
		{id("g", 1), id("g", 4), false}, // already nested, no cycle
		{id("g", 1), id("g", 1), true},
		{id("g", 3), id("g", 2), false},
		{id("g", 2), id("g", 7), true},
		{id("g", 8), id("g", 5), false},
	}
	for _, tt := range cycleTests {
		if got := s.WouldCycle(tt.group, tt.member); got != tt.want {
			t.Errorf("WouldCycle(%s, %s) = %v, want %v", tt.group, tt.member, got, tt.want)
		}
	}

	want := Stats{Users: 5, Groups: 8, Applications: 1, ServicePrincipals: 2, NamedLocations: 3, RoleAssignments: 5,
		Memberships: 14, TransitiveMemberships: 28, DanglingMembers: 1, DanglingAssignments: 1, CyclicGroups: 2}
	if got := s.Stats(); got != want {
		t.Errorf("Stats = %+v\nwant    %+v", got, want)
	}
}

func TestSnapshotLookups(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	rev := putAll(t, st, fixture(t))
	var s *Snapshot
	if err := st.View(context.Background(), func(ctx context.Context, r store.Reader, rev int64) error {
		var err error
		s, err = Build(ctx, r, rev)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if s.Revision() != rev {
		t.Errorf("Revision = %d, want %d", s.Revision(), rev)
	}
	if u, ok := s.UserByUPN("ALICE@contoso.COM"); !ok || u.ID != id("u", 1) {
		t.Errorf("UserByUPN = %v, %v", u, ok)
	}
	if u, ok := s.User(id("u", 2)); !ok || u.UserPrincipalName != "bob@contoso.com" {
		t.Errorf("User = %v, %v", u, ok)
	}
	if _, ok := s.User(id("g", 1)); ok {
		t.Error("User found a group")
	}
	if g, ok := s.GroupByName("security ADMINS"); !ok || g.ID != id("g", 7) || !g.RoleAssignable() {
		t.Errorf("GroupByName = %v, %v", g, ok)
	}
	if _, ok := s.Group(id("u", 1)); ok {
		t.Error("Group found a user")
	}
	if sp, ok := s.ServicePrincipalByAppID(id("a", 1)); !ok || sp.ID != id("s", 1) {
		t.Errorf("ServicePrincipalByAppID = %v, %v", sp, ok)
	}
	if sp, ok := s.ServicePrincipal(id("s", 2)); !ok || sp.Enabled() {
		t.Errorf("ServicePrincipal(s2) = %v, %v", sp, ok)
	}
	if a, ok := s.ApplicationByAppID(id("a", 1)); !ok || a.ID != id("a", 9) {
		t.Errorf("ApplicationByAppID = %v, %v", a, ok)
	}
	if a, ok := s.Application(id("a", 9)); !ok || a.DisplayName != "Payroll" {
		t.Errorf("Application = %v, %v", a, ok)
	}
	kinds := map[string]string{id("u", 1): KindUser, id("g", 1): KindGroup, id("s", 1): KindServicePrincipal, id("a", 9): "", id("x", 1): ""}
	for pid, want := range kinds {
		if got := s.PrincipalKind(pid); got != want {
			t.Errorf("PrincipalKind(%s) = %q, want %q", pid, got, want)
		}
	}
	enabled := map[string]bool{id("u", 1): true, id("u", 4): false, id("s", 1): true, id("s", 2): false, id("g", 1): false, guidA: false}
	for pid, want := range enabled {
		if got := s.PrincipalEnabled(pid); got != want {
			t.Errorf("PrincipalEnabled(%s) = %v, want %v", pid, got, want)
		}
	}
	if l, ok := s.LocationByName("hq"); !ok || l.ID != id("l", 1) || !l.ContainsIP(netip.MustParseAddr("192.0.2.9")) {
		t.Errorf("LocationByName(hq) = %v, %v", l, ok)
	}
	if l, ok := s.Location(id("l", 3)); !ok || !l.ContainsCountry("LU") {
		t.Errorf("Location(l3) = %v, %v", l, ok)
	}
	for addr, want := range map[string]bool{"192.0.2.1": true, "198.51.100.1": false, "203.0.113.1": false} {
		if got := s.InTrustedLocation(netip.MustParseAddr(addr)); got != want {
			t.Errorf("InTrustedLocation(%s) = %v, want %v", addr, got, want)
		}
	}
	if len(s.Users()) != 5 || len(s.Groups()) != 8 || len(s.Applications()) != 1 || len(s.ServicePrincipals()) != 2 ||
		len(s.Locations()) != 3 || len(s.RoleAssignments()) != 5 {
		t.Error("listing methods disagree with Stats")
	}
	// Returned lists are capped: appending copies rather than overwriting
	// the shared array.
	list := s.TransitiveMemberOf(id("u", 1))
	_ = append(list, "x")
	if got := s.TransitiveMemberOf(id("u", 2)); !slices.Equal(got, ids("g", 1, 3)) {
		t.Errorf("append to one list changed another: %v", got)
	}
}

func TestBuildRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		objs []store.Object
		want string
	}{
		{"id shared by user and group", []store.Object{
			object(t, &User{ID: guidA, UserPrincipalName: "a@b.c", DisplayName: "A"}),
			object(t, &Group{GraphGroup: GraphGroup{ID: guidA, DisplayName: "G"}}),
		}, "id " + guidA + " is used by two directory objects"},
		{"undecodable body", []store.Object{
			{Kind: KindGroup, ID: guidB, Key: "g", Body: []byte(`{"displayName":5}`)},
		}, "decode group " + guidB},
		{"unknown location type", []store.Object{
			{Kind: KindNamedLocation, ID: guidB, Key: "l", Body: []byte(`{"@odata.type":"#x","displayName":"L"}`)},
		}, "unknown named location type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t)
			putAll(t, st, tt.objs)
			err := st.View(context.Background(), func(ctx context.Context, r store.Reader, rev int64) error {
				_, err := Build(ctx, r, rev)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBuildCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, newMemReader(nil), 1); err == nil {
		t.Fatal("Build with a cancelled context succeeded")
	}
}

func TestBuildEmptyAndPaged(t *testing.T) {
	t.Parallel()
	s := buildFromStore(t, nil)
	if s.Stats() != (Stats{}) || s.TransitiveMemberOf(guidA) != nil || s.InTrustedLocation(netip.MustParseAddr("192.0.2.1")) {
		t.Errorf("empty snapshot = %+v", s.Stats())
	}
	// More users than one page, all in one group.
	var objs []store.Object
	var members []string
	for n := range pageSize + 7 {
		objs = append(objs, object(t, &User{ID: id("u", n), UserPrincipalName: "u" + itoa(n) + "@contoso.com", DisplayName: "u"}))
		members = append(members, id("u", n))
	}
	objs = append(objs, object(t, &Group{GraphGroup: GraphGroup{ID: id("g", 1), DisplayName: "All"}, Members: members}))
	s = buildFromStore(t, objs)
	if s.Stats().Users != pageSize+7 || len(s.TransitiveMembers(id("g", 1))) != pageSize+7 || !s.InGroup(id("u", pageSize+6), id("g", 1)) {
		t.Errorf("paged build: %+v", s.Stats())
	}
}

// TestClosureMatchesSearch compares the compiled closure with a plain
// graph search on random directories with nesting, cycles and dangling
// ids.
func TestClosureMatchesSearch(t *testing.T) {
	t.Parallel()
	for seed := range uint64(4) {
		t.Run("seed "+itoa(int(seed)), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 42))
			const nUsers, nGroups = 60, 40
			members := map[string][]string{}
			var objs []store.Object
			for n := range nUsers {
				objs = append(objs, object(t, &User{ID: id("u", n), UserPrincipalName: "u" + itoa(n) + "@c.com", DisplayName: "u"}))
			}
			for g := range nGroups {
				var m []string
				for range rng.IntN(6) {
					switch rng.IntN(3) {
					case 0:
						m = append(m, id("u", rng.IntN(nUsers)))
					case 1:
						if o := rng.IntN(nGroups); o != g {
							m = append(m, id("g", o))
						}
					default:
						if rng.IntN(4) == 0 {
							m = append(m, id("x", rng.IntN(10)))
						} else {
							m = append(m, id("g", rng.IntN(nGroups)))
						}
					}
				}
				grp := &Group{GraphGroup: GraphGroup{ID: id("g", g), DisplayName: "g" + itoa(g)}, Members: slices.DeleteFunc(m, func(s string) bool { return s == id("g", g) })}
				objs = append(objs, object(t, grp))
				members[grp.ID] = grp.Members
			}
			s := buildFromStore(t, objs)
			// parentsOf inverts members.
			parentsOf := map[string][]string{}
			for g, ms := range members {
				for _, m := range ms {
					parentsOf[m] = append(parentsOf[m], g)
				}
			}
			check := func(p string) {
				seen := map[string]bool{}
				queue := slices.Clone(parentsOf[p])
				for len(queue) > 0 {
					g := queue[0]
					queue = queue[1:]
					if seen[g] {
						continue
					}
					seen[g] = true
					queue = append(queue, parentsOf[g]...)
				}
				delete(seen, p)
				var want []string
				for g := range seen {
					want = append(want, g)
				}
				slices.Sort(want)
				if got := s.TransitiveMemberOf(p); !slices.Equal(got, want) {
					t.Errorf("TransitiveMemberOf(%s) = %v, want %v", p, got, want)
				}
				for _, g := range want {
					if !slices.Contains(s.TransitiveMembers(g), p) {
						t.Errorf("TransitiveMembers(%s) lacks %s", g, p)
					}
				}
			}
			for n := range nUsers {
				check(id("u", n))
			}
			for g := range nGroups {
				check(id("g", g))
			}
		})
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	s := buildFromStore(t, fixture(t))
	u1, g1, g7, l1 := id("u", 1), id("g", 1), id("g", 7), id("l", 1)
	addr := netip.MustParseAddr("192.0.2.77")
	var sink int
	allocs := testing.AllocsPerRun(100, func() {
		if s.InGroup(u1, g1) {
			sink++
		}
		sink += len(s.TransitiveMemberOf(u1)) + len(s.MemberOf(u1)) + len(s.DirectoryRoles(u1)) + len(s.TransitiveMembers(g7))
		if s.HasDirectoryRole(u1, GlobalAdministratorRoleID) && s.PrincipalEnabled(u1) && s.InTrustedLocation(addr) {
			sink++
		}
		if u, ok := s.UserByUPN("alice@contoso.com"); ok && u.Enabled() {
			sink++
		}
		if l, ok := s.Location(l1); ok && l.ContainsIP(addr) {
			sink++
		}
	})
	if allocs != 0 {
		t.Errorf("hot path allocates %.1f times per run", allocs)
	}
	if sink == 0 {
		t.Error("lookups found nothing")
	}
}

// TestDeepNesting builds a chain of groups nested far deeper than any real
// directory, and a long cycle, to show the closure neither recurses on the
// goroutine stack nor loses members.
func TestDeepNesting(t *testing.T) {
	t.Parallel()
	const depth = 600
	var objs []store.Object
	// Chain: group n holds group n+1; the last holds the user.
	for n := range depth {
		m := []string{id("g", n+1)}
		if n == depth-1 {
			m = []string{id("u", 1)}
		}
		objs = append(objs, object(t, &Group{GraphGroup: GraphGroup{ID: id("g", n), DisplayName: "chain " + itoa(n)}, Members: m}))
	}
	// Ring: group r holds group r+1, the last holds the first.
	const ring = 300
	for n := range ring {
		objs = append(objs, object(t, &Group{GraphGroup: GraphGroup{ID: id("x", n), DisplayName: "ring " + itoa(n)}, Members: []string{id("x", (n+1)%ring), id("u", 2)}}))
	}
	objs = append(objs, object(t, &User{ID: id("u", 1), UserPrincipalName: "deep@c.com", DisplayName: "d"}),
		object(t, &User{ID: id("u", 2), UserPrincipalName: "ring@c.com", DisplayName: "r"}))
	s := buildFromStore(t, objs)
	if got := len(s.TransitiveMemberOf(id("u", 1))); got != depth {
		t.Errorf("user at the bottom of the chain is in %d groups, want %d", got, depth)
	}
	if got := len(s.TransitiveMembers(id("g", 0))); got != depth {
		t.Errorf("top of the chain has %d members, want %d", got, depth)
	}
	if !s.InGroup(id("g", depth-1), id("g", 0)) || s.InGroup(id("g", 0), id("g", depth-1)) {
		t.Error("chain direction is wrong")
	}
	if got := len(s.TransitiveMemberOf(id("x", 7))); got != ring-1 {
		t.Errorf("a ring group is in %d groups, want %d (every other ring group)", got, ring-1)
	}
	if got := len(s.TransitiveMemberOf(id("u", 2))); got != ring {
		t.Errorf("ring user is in %d groups, want %d", got, ring)
	}
	if st := s.Stats(); st.CyclicGroups != ring || st.DanglingMembers != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if !s.WouldCycle(id("g", depth-1), id("g", 0)) || s.WouldCycle(id("g", 0), id("g", depth-1)) {
		t.Error("WouldCycle disagrees with the chain")
	}
}
