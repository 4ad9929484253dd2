package directory

import (
	"iter"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/schedule"
)

// Snapshot is the directory compiled for the decision hot path, as of one
// store revision. It is immutable: every method is safe for concurrent use,
// takes no lock and, unless it says otherwise, does not allocate. Slices
// and pointers it returns are shared with every other reader and must not
// be modified.
//
// Ids are compared exactly; they are stored in lower case (Normalize), so
// callers pass lower-case GUIDs.
type Snapshot struct {
	revision int64

	users       []User             // sorted by ID
	groups      []Group            // sorted by ID
	apps        []Application      // sorted by ID
	sps         []ServicePrincipal // sorted by ID
	locations   []Location         // sorted by ID
	assignments []RoleAssignment   // sorted by ID

	// principals indexes users, groups and service principals by id into
	// nodes; node order is id order, so lists of group ids built in node
	// order are sorted.
	principals map[string]int32
	nodes      []node
	// timedRoles are the directory roles through time of the nodes (by
	// index) that hold some through time-bound assignments: few.
	timedRoles map[int32]*timedRoles

	userByUPN map[string]int32 // lower-cased UPN -> users
	// userByIdentity maps a federated identity (identityKey) to the user
	// that lists it, -1 when several do.
	userByIdentity map[string]int32
	groupByName    map[string]int32     // lower-cased displayName -> groups
	appByAppID     map[string]int32     // appId -> apps
	spByAppID      map[string]int32     // appId -> sps
	appByID        map[string]int32     // id -> apps
	locByID        map[string]int32     // id -> locations
	locByName      map[string]int32     // lower-cased displayName -> locations
	trustedRanges  []addrRange          // union of trusted IP locations
	appByCert      map[[32]byte]certRef // CertificateKey -> the application listing it
	routes         []AppRoute
	routesByHost   map[string][]int32 // Host() -> routes, longest prefix first

	stats Stats
}

// node is one principal (user, group or service principal) with its
// precomputed relations. Every list is sorted by id and capped, so an
// append by a careless caller copies instead of overwriting a neighbour.
type node struct {
	kind principalKind
	// timed says some of the roles come through time-bound assignments:
	// Snapshot.timedRoles has them through time, and roles is then only
	// the permanent ones. It sits in padding, so that a node stays two
	// cache lines.
	timed bool
	index int32 // into users, groups or sps
	// The first cache line holds what a decision asks of a principal
	// (Principal: kind, index, roles, transitive); the second the rest.
	roles             []string // directory role template ids, directly or through role-assignable groups
	transitive        []string // groups the principal is a member of, directly or through nesting
	memberOf          []string // groups the principal is a direct member of
	transitivePos     []int32  // the same groups as positions in Snapshot.groups, for InGroup
	transitiveMembers []string // groups only: principals in it, directly or through nesting
}

// rolesAt is node i's roles at now (zero: the current time, read only
// when some are time-bound). In a tenant without time-bound assignments
// the answer does not wait on the node's flag.
func (s *Snapshot) rolesAt(i int32, now time.Time) []string {
	n := &s.nodes[i]
	if s.timedRoles == nil || !n.timed {
		return n.roles
	}
	return s.timedRolesAt(i, now)
}

// timedRolesAt is rolesAt for a node with time-bound roles, kept apart so
// that rolesAt inlines.
func (s *Snapshot) timedRolesAt(i int32, now time.Time) []string {
	if now.IsZero() {
		now = time.Now()
	}
	return s.timedRoles[i].at(schedule.UnixNanos(now))
}

type principalKind uint8

const (
	kindUser principalKind = iota + 1
	kindGroup
	kindServicePrincipal
)

// Stats counts what a Snapshot holds.
type Stats struct {
	Users             int
	Groups            int
	Applications      int
	ServicePrincipals int
	NamedLocations    int
	RoleAssignments   int
	// Memberships counts direct member -> group edges between existing
	// objects; TransitiveMemberships counts (principal, group) pairs.
	Memberships           int
	TransitiveMemberships int
	// DanglingMembers counts member ids that name no user, group or
	// service principal; DanglingAssignments counts role assignments whose
	// principal does not exist. Both are ignored.
	DanglingMembers     int
	DanglingAssignments int
	// CyclicGroups counts groups that are, through nesting, members of
	// themselves. Verity refuses such nesting (WouldCycle) but tolerates it
	// in imported data.
	CyclicGroups int
}

// Revision is the store revision the snapshot reflects.
func (s *Snapshot) Revision() int64 { return s.revision }

// Stats counts the snapshot's objects and relations.
func (s *Snapshot) Stats() Stats { return s.stats }

func (s *Snapshot) node(id string) *node {
	i, ok := s.principals[id]
	if !ok {
		return nil
	}
	return &s.nodes[i]
}

// User finds a user by id.
func (s *Snapshot) User(id string) (*User, bool) {
	n := s.node(id)
	if n == nil || n.kind != kindUser {
		return nil, false
	}
	return &s.users[n.index], true
}

// UserByUPN finds a user by userPrincipalName, ignoring case. It allocates
// only when upn holds upper-case letters.
func (s *Snapshot) UserByUPN(upn string) (*User, bool) {
	i, ok := s.userByUPN[strings.ToLower(upn)]
	if !ok {
		return nil, false
	}
	return &s.users[i], true
}

// UserByIdentity finds the user whose identities link it to the account
// issuerAssignedID at issuer (signInType federated). ambiguous says
// several users claim the account, and none is returned.
func (s *Snapshot) UserByIdentity(issuer, issuerAssignedID string) (u *User, ambiguous bool) {
	i, ok := s.userByIdentity[identityKey(issuer, issuerAssignedID)]
	switch {
	case !ok:
		return nil, false
	case i < 0:
		return nil, true
	}
	return &s.users[i], false
}

func identityKey(issuer, id string) string {
	return strings.TrimSuffix(issuer, "/") + "\x00" + id
}

type certRef struct{ app, cred int32 }

// ApplicationByCertificate finds the application whose key credentials
// list the certificate der (exactly), and that credential. A certificate
// several applications list finds none.
func (s *Snapshot) ApplicationByCertificate(der []byte) (*Application, *KeyCredential, bool) {
	ref, ok := s.appByCert[CertificateKey(der)]
	if !ok || ref.app < 0 {
		return nil, nil, false
	}
	a := &s.apps[ref.app]
	return a, &a.KeyCredentials[ref.cred], true
}

// Routes returns the proxy's routes, sorted by id.
func (s *Snapshot) Routes() []AppRoute { return s.routes }

// Route finds a route by id.
func (s *Snapshot) Route(id string) (*AppRoute, bool) {
	id = lowerGUID(id)
	i, ok := slices.BinarySearchFunc(s.routes, id, func(r AppRoute, id string) int { return strings.Compare(r.ID, id) })
	if !ok {
		return nil, false
	}
	return &s.routes[i], true
}

// RouteFor finds the route of a request: host is the Host header (lower
// case, without :443), path its normalised path. Of the host's routes,
// the one with the longest prefix that covers path wins.
func (s *Snapshot) RouteFor(host, path string) (*AppRoute, bool) {
	for _, i := range s.routesByHost[host] {
		r := &s.routes[i]
		if p := r.Prefix(); strings.HasPrefix(path, p) || path+"/" == p {
			return r, true
		}
	}
	return nil, false
}

// HasRouteHost reports whether some route is published on host.
func (s *Snapshot) HasRouteHost(host string) bool { return len(s.routesByHost[host]) > 0 }

// Group finds a group by id.
func (s *Snapshot) Group(id string) (*Group, bool) {
	n := s.node(id)
	if n == nil || n.kind != kindGroup {
		return nil, false
	}
	return &s.groups[n.index], true
}

// GroupByName finds a group by displayName, ignoring case (Verity keeps
// group names unique).
func (s *Snapshot) GroupByName(name string) (*Group, bool) {
	i, ok := s.groupByName[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return &s.groups[i], true
}

// Application finds an application by id.
func (s *Snapshot) Application(id string) (*Application, bool) {
	i, ok := s.appByID[id]
	if !ok {
		return nil, false
	}
	return &s.apps[i], true
}

// ApplicationByAppID finds an application by appId.
func (s *Snapshot) ApplicationByAppID(appID string) (*Application, bool) {
	i, ok := s.appByAppID[appID]
	if !ok {
		return nil, false
	}
	return &s.apps[i], true
}

// ServicePrincipal finds a service principal by id.
func (s *Snapshot) ServicePrincipal(id string) (*ServicePrincipal, bool) {
	n := s.node(id)
	if n == nil || n.kind != kindServicePrincipal {
		return nil, false
	}
	return &s.sps[n.index], true
}

// ServicePrincipalByAppID finds a service principal by appId.
func (s *Snapshot) ServicePrincipalByAppID(appID string) (*ServicePrincipal, bool) {
	i, ok := s.spByAppID[appID]
	if !ok {
		return nil, false
	}
	return &s.sps[i], true
}

// PrincipalKind is the store kind of the user, group or service principal
// with the given id (KindUser, KindGroup, KindServicePrincipal), or "" when
// there is none.
func (s *Snapshot) PrincipalKind(id string) string {
	n := s.node(id)
	if n == nil {
		return ""
	}
	switch n.kind {
	case kindUser:
		return KindUser
	case kindGroup:
		return KindGroup
	default:
		return KindServicePrincipal
	}
}

// PrincipalEnabled reports whether id is a user or service principal that
// exists and may sign in. Groups and unknown ids are not enabled.
func (s *Snapshot) PrincipalEnabled(id string) bool {
	n := s.node(id)
	switch {
	case n == nil:
		return false
	case n.kind == kindUser:
		return s.users[n.index].Enabled()
	case n.kind == kindServicePrincipal:
		return s.sps[n.index].Enabled()
	}
	return false
}

// MemberOf lists, sorted, the existing groups principalID is a direct
// member of.
func (s *Snapshot) MemberOf(principalID string) []string {
	if n := s.node(principalID); n != nil {
		return n.memberOf
	}
	return nil
}

// TransitiveMemberOf lists, sorted, every group principalID is a member
// of, directly or through nested groups. A group in a membership cycle is
// not listed as a member of itself.
func (s *Snapshot) TransitiveMemberOf(principalID string) []string {
	if n := s.node(principalID); n != nil {
		return n.transitive
	}
	return nil
}

// PrincipalIDs yields the id of every user and service principal (which
// includes managed identities): the principals that sign in and act.
func (s *Snapshot) PrincipalIDs() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range s.users {
			if !yield(s.users[i].ID) {
				return
			}
		}
		for i := range s.sps {
			if !yield(s.sps[i].ID) {
				return
			}
		}
	}
}

// InGroup reports whether principalID is a member of groupID, directly or
// through nesting, in O(log n). It searches group positions rather than
// id strings: one contiguous array instead of a string per probe.
func (s *Snapshot) InGroup(principalID, groupID string) bool {
	n := s.node(principalID)
	if n == nil || len(n.transitivePos) == 0 {
		return false
	}
	g := s.node(groupID)
	if g == nil || g.kind != kindGroup {
		return false
	}
	_, found := slices.BinarySearch(n.transitivePos, g.index)
	return found
}

// Members lists the group's stored members (ids, sorted), including ids
// that name nothing; nil for an unknown group.
func (s *Snapshot) Members(groupID string) []string {
	if g, ok := s.Group(groupID); ok {
		return g.Members
	}
	return nil
}

// TransitiveMembers lists, sorted, every existing user, group and service
// principal in groupID, directly or through nested groups.
func (s *Snapshot) TransitiveMembers(groupID string) []string {
	if n := s.node(groupID); n != nil {
		return n.transitiveMembers
	}
	return nil
}

// WouldCycle reports whether making memberGroupID a member of groupID
// would create a membership cycle: true when they are the same group or
// groupID is already, transitively, a member of memberGroupID.
func (s *Snapshot) WouldCycle(groupID, memberGroupID string) bool {
	return groupID == memberGroupID || s.InGroup(groupID, memberGroupID)
}

// DirectoryRoles is DirectoryRolesAt(principalID, time.Now()): the roles
// in force now. Decisions that have a time of their own use
// DirectoryRolesAt.
func (s *Snapshot) DirectoryRoles(principalID string) []string {
	return s.DirectoryRolesAt(principalID, time.Time{})
}

// DirectoryRolesAt lists, sorted, the template ids of the directory roles
// assigned to principalID at any directory scope, directly or through a
// role-assignable group it is a direct member of, by assignments in force
// at now: an assignment with a window counts from its StartDateTime until
// just before its EndDateTime. A zero now is the current time. As in
// Entra, roles of a role-assignable group do not reach members of nested
// groups (Entra forbids nesting groups in role-assignable groups). It does
// not allocate: the roles of principals with time-bound assignments are
// precomputed for every interval between their bounds.
func (s *Snapshot) DirectoryRolesAt(principalID string, now time.Time) []string {
	if i, ok := s.principals[principalID]; ok {
		return s.rolesAt(i, now)
	}
	return nil
}

// HasDirectoryRole is HasDirectoryRoleAt(principalID, roleTemplateID,
// time.Now()).
func (s *Snapshot) HasDirectoryRole(principalID, roleTemplateID string) bool {
	return s.HasDirectoryRoleAt(principalID, roleTemplateID, time.Time{})
}

// HasDirectoryRoleAt reports whether DirectoryRolesAt(principalID, now)
// holds roleTemplateID.
func (s *Snapshot) HasDirectoryRoleAt(principalID, roleTemplateID string, now time.Time) bool {
	i, ok := s.principals[principalID]
	if !ok {
		return false
	}
	_, found := slices.BinarySearch(s.rolesAt(i, now), roleTemplateID)
	return found
}

// RoleAssignments lists every directory role assignment, sorted by id.
func (s *Snapshot) RoleAssignments() []RoleAssignment { return s.assignments }

// Location finds a named location by id.
func (s *Snapshot) Location(id string) (*Location, bool) {
	i, ok := s.locByID[id]
	if !ok {
		return nil, false
	}
	return &s.locations[i], true
}

// LocationByName finds a named location by displayName, ignoring case.
func (s *Snapshot) LocationByName(name string) (*Location, bool) {
	i, ok := s.locByName[strings.ToLower(name)]
	if !ok {
		return nil, false
	}
	return &s.locations[i], true
}

// Locations lists every named location, sorted by id.
func (s *Snapshot) Locations() []Location { return s.locations }

// InTrustedLocation reports whether addr falls in an IP named location
// marked trusted (conditional access's "AllTrusted").
func (s *Snapshot) InTrustedLocation(addr netip.Addr) bool {
	return rangesContain(s.trustedRanges, addr)
}

// Users lists every user, sorted by id.
func (s *Snapshot) Users() []User { return s.users }

// Groups lists every group, sorted by id.
func (s *Snapshot) Groups() []Group { return s.groups }

// Applications lists every application, sorted by id.
func (s *Snapshot) Applications() []Application { return s.apps }

// ServicePrincipals lists every service principal, sorted by id.
func (s *Snapshot) ServicePrincipals() []ServicePrincipal { return s.sps }

// Principal is PrincipalAt(id, time.Now()).
func (s *Snapshot) Principal(id string) (groups, roles []string, guest bool) {
	return s.PrincipalAt(id, time.Time{})
}

// PrincipalAt answers, with one lookup, what a conditional access decision
// at now asks of a principal: its transitive groups, its directory roles
// in force at now (sorted; see DirectoryRolesAt) and whether it is a guest
// user. Nothing for an unknown id.
func (s *Snapshot) PrincipalAt(id string, now time.Time) (groups, roles []string, guest bool) {
	i, ok := s.principals[id]
	if !ok {
		return nil, nil, false
	}
	n := &s.nodes[i]
	return n.transitive, s.rolesAt(i, now), n.kind == kindUser && s.users[n.index].IsGuest()
}
