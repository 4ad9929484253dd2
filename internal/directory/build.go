package directory

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// pageSize is how many objects Build asks the store for at a time.
const pageSize = 5000

// Build reads every directory kind from r (one consistent view, such as
// store.Store.View gives) and compiles the Snapshot for revision. Stored
// bodies were validated when written; a body that does not decode fails
// the build. Cycles in group nesting and member or principal ids that name
// nothing are tolerated and counted in Stats.
func Build(ctx context.Context, r store.Reader, revision int64) (*Snapshot, error) {
	s := &Snapshot{revision: revision}
	var err error
	if s.users, err = load(ctx, r, Users); err != nil {
		return nil, err
	}
	if s.groups, err = load(ctx, r, Groups); err != nil {
		return nil, err
	}
	if s.apps, err = load(ctx, r, Applications); err != nil {
		return nil, err
	}
	if s.sps, err = load(ctx, r, ServicePrincipals); err != nil {
		return nil, err
	}
	locs, err := load(ctx, r, NamedLocations)
	if err != nil {
		return nil, err
	}
	if s.assignments, err = load(ctx, r, RoleAssignments); err != nil {
		return nil, err
	}
	if s.routes, err = load(ctx, r, AppRoutes); err != nil {
		return nil, err
	}
	s.locations = make([]Location, len(locs))
	for i := range locs {
		s.locations[i] = compileLocation(locs[i])
	}
	if err := s.index(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("build directory snapshot: %w", err)
	}
	s.compileMembership()
	s.compileRoles()
	s.stats.Users = len(s.users)
	s.stats.Groups = len(s.groups)
	s.stats.Applications = len(s.apps)
	s.stats.ServicePrincipals = len(s.sps)
	s.stats.NamedLocations = len(s.locations)
	s.stats.RoleAssignments = len(s.assignments)
	return s, nil
}

// load lists every object of kind k and decodes them, in parallel, into a
// slice sorted by id.
func load[T any, P resourcePtr[T]](ctx context.Context, r store.Reader, k *Kind[T, P]) ([]T, error) {
	var objs []store.Object
	after := ""
	for {
		page, err := r.List(ctx, k.name, store.ListOptions{AfterID: after, Limit: pageSize})
		if err != nil {
			return nil, fmt.Errorf("build directory snapshot: list %s: %w", k.name, err)
		}
		objs = append(objs, page...)
		if len(page) < pageSize {
			break
		}
		after = page[len(page)-1].ID
	}
	out := make([]T, len(objs))
	workers := min(runtime.GOMAXPROCS(0), 1+len(objs)/1000)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(objs); i += workers {
				if err := k.decodeObject(objs[i], P(&out[i])); err != nil {
					errs[w] = fmt.Errorf("build directory snapshot: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	for i := 1; i < len(out); i++ {
		if P(&out[i-1]).ObjectID() >= P(&out[i]).ObjectID() {
			// Engines list in id order; sort anyway rather than trust it.
			slices.SortFunc(out, func(a, b T) int { return strings.Compare(P(&a).ObjectID(), P(&b).ObjectID()) })
			break
		}
	}
	return out, nil
}

// index builds the lookup maps and the principal nodes.
func (s *Snapshot) index() error {
	// Each kind is sorted by id; merging them numbers the nodes in id order.
	s.nodes = make([]node, 0, len(s.users)+len(s.groups)+len(s.sps))
	s.principals = make(map[string]int32, cap(s.nodes))
	var u, g, p int
	for len(s.nodes) < cap(s.nodes) {
		n, id := node{}, ""
		switch {
		case u < len(s.users) && (g == len(s.groups) || s.users[u].ID < s.groups[g].ID) && (p == len(s.sps) || s.users[u].ID < s.sps[p].ID):
			n, id = node{kind: kindUser, index: int32(u)}, s.users[u].ID
			u++
		case g < len(s.groups) && (p == len(s.sps) || s.groups[g].ID < s.sps[p].ID):
			n, id = node{kind: kindGroup, index: int32(g)}, s.groups[g].ID
			g++
		default:
			n, id = node{kind: kindServicePrincipal, index: int32(p)}, s.sps[p].ID
			p++
		}
		if _, dup := s.principals[id]; dup {
			return fmt.Errorf("build directory snapshot: id %s is used by two directory objects (users, groups and service principals share one id space)", id)
		}
		s.principals[id] = int32(len(s.nodes))
		s.nodes = append(s.nodes, n)
	}

	s.userByUPN = make(map[string]int32, len(s.users))
	for i := range s.users {
		s.userByUPN[s.users[i].Key()] = int32(i)
	}
	// Federated identities: issuer and account → user; an account two
	// users claim links to neither (-1).
	s.userByIdentity = map[string]int32{}
	for i := range s.users {
		for _, id := range s.users[i].Identities {
			if id.SignInType != SignInTypeFederated {
				continue
			}
			k := identityKey(id.Issuer, id.IssuerAssignedID)
			if j, dup := s.userByIdentity[k]; dup && j != int32(i) {
				s.userByIdentity[k] = -1
				continue
			}
			s.userByIdentity[k] = int32(i)
		}
	}
	// Routes by host, longest prefix first.
	s.routesByHost = map[string][]int32{}
	for i := range s.routes {
		r := &s.routes[i]
		r.host, r.prefix, r.port = r.Host(), r.Prefix(), r.Port()
		h := r.host
		s.routesByHost[h] = append(s.routesByHost[h], int32(i))
	}
	for _, rs := range s.routesByHost {
		slices.SortFunc(rs, func(a, b int32) int { return len(s.routes[b].Prefix()) - len(s.routes[a].Prefix()) })
	}
	s.groupByName = make(map[string]int32, len(s.groups))
	for i := range s.groups {
		s.groupByName[s.groups[i].Key()] = int32(i)
	}
	s.appByID = make(map[string]int32, len(s.apps))
	s.appByAppID = make(map[string]int32, len(s.apps))
	for i := range s.apps {
		s.appByID[s.apps[i].ID] = int32(i)
		if s.apps[i].AppID != "" {
			s.appByAppID[s.apps[i].AppID] = int32(i)
		}
	}
	// Certificates of applications' key credentials: one application each;
	// a certificate two applications list belongs to neither.
	s.appByCert = map[[32]byte]certRef{}
	for i := range s.apps {
		for j := range s.apps[i].KeyCredentials {
			c, err := s.apps[i].KeyCredentials[j].Certificate()
			if err != nil {
				continue
			}
			k := CertificateKey(c.Raw)
			if prev, dup := s.appByCert[k]; dup && prev.app != int32(i) {
				s.appByCert[k] = certRef{app: -1}
				continue
			}
			s.appByCert[k] = certRef{app: int32(i), cred: int32(j)}
		}
	}
	s.spByAppID = make(map[string]int32, len(s.sps))
	for i := range s.sps {
		s.spByAppID[s.sps[i].AppID] = int32(i)
	}
	s.locByID = make(map[string]int32, len(s.locations))
	s.locByName = make(map[string]int32, len(s.locations))
	var trusted []addrRange
	for i := range s.locations {
		l := &s.locations[i]
		s.locByID[l.ID] = int32(i)
		s.locByName[l.Key()] = int32(i)
		if l.IsTrusted {
			trusted = append(trusted, l.ranges...)
		}
	}
	s.trustedRanges = mergeRanges(trusted)
	return nil
}

// compileRoles fills each node's directory roles: those assigned to it
// and those assigned to the role-assignable groups it is a direct member
// of. A node any of whose roles comes through a time-bound assignment
// also gets them through time (Snapshot.timedRoles).
func (s *Snapshot) compileRoles() {
	direct := map[int32][]heldRole{}
	for i := range s.assignments {
		a := &s.assignments[i]
		p, ok := s.principals[a.PrincipalID]
		if !ok {
			s.stats.DanglingAssignments++
			continue
		}
		w, _ := a.Schedule.Window()
		direct[p] = append(direct[p], heldRole{a.RoleDefinitionID, w})
	}
	if len(direct) == 0 {
		return
	}
	// Only a few principals hold roles; visit them and the direct members
	// of role-assignable groups that hold roles.
	grant := map[int32][]heldRole{}
	for p, held := range direct {
		grant[p] = append(grant[p], held...)
		n := &s.nodes[p]
		if n.kind != kindGroup || !s.groups[n.index].RoleAssignable() {
			continue
		}
		for _, m := range s.groups[n.index].Members {
			if q, ok := s.principals[m]; ok {
				grant[q] = append(grant[q], held...)
			}
		}
	}
	for p, held := range grant {
		var roles []string
		timed := false
		for _, h := range held {
			if h.Window == schedule.Always {
				roles = append(roles, h.role)
			} else {
				timed = true
			}
		}
		slices.Sort(roles)
		s.nodes[p].roles = slices.Clip(slices.Compact(roles))
		if timed {
			if s.timedRoles == nil {
				s.timedRoles = map[int32]*timedRoles{}
			}
			s.nodes[p].timed = true
			s.timedRoles[p] = buildTimedRoles(held)
		}
	}
}
