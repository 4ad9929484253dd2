package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// kid names one stored object across kinds.
type kid struct{ kind, id string }

// item is one manifest entry on its way to the store.
type item struct {
	kind    string
	section string
	index   int // in the manifest's section
	// res is the normalised, validated object with its final id, without
	// server-set properties.
	res      directory.Resource
	key      string // natural key, or (principal, role, scope) of an assignment
	name     string // as the plan shows it
	existing *store.Object
	invalid  bool // failed validation (already reported)
	// secret is an identity provider's new client secret, when the
	// manifest gives one that differs from the stored one.
	secret string
}

// principal is a user, group or service principal of the resulting
// directory (or one that pruning deletes).
type principal struct {
	kind string
	ref  string // how a manifest names it: userPrincipalName, displayName, appId
	name string // how a plan shows it
	res  directory.Resource
}

// planner computes one plan.
type planner struct {
	ctx   context.Context
	m     *Manifest
	opts  Options
	now   time.Time
	errs  errList
	roles []directory.RoleDefinition

	stored map[string][]store.Object // by kind, in id order
	byID   map[string]map[string]*store.Object
	byKey  map[string]map[string]*store.Object

	items   map[string][]*item // by kind, in manifest order
	matched map[kid]bool       // stored objects a manifest entry matched
	pruned  map[kid]*store.Object

	// The principals of the resulting directory by kind and lower-cased
	// reference, and every principal (pruned ones too) by id.
	refs       map[string]map[string]string
	prunedRefs map[string]map[string]bool
	principals map[string]principal
	// leftovers are the stored users, groups and service principals the
	// manifest does not list and the plan keeps, decoded.
	leftovers map[kid]directory.Resource
	// disabled lists the users and service principals the plan disables.
	disabled []string
	// records, when set, is where the current client secrets of identity
	// providers are read, so that an unchanged secret is no change.
	records store.Store
	// secrets are the client secrets the plan stores, from keepSecret.
	secrets []pendingSecret
}

func newPlanner(ctx context.Context, r store.Reader, m *Manifest, opts Options) (*planner, error) {
	p := &planner{
		ctx: ctx, m: m, opts: opts, now: time.Now().UTC(), roles: directory.BuiltinRoles(),
		stored: map[string][]store.Object{}, byID: map[string]map[string]*store.Object{}, byKey: map[string]map[string]*store.Object{},
		items: map[string][]*item{}, matched: map[kid]bool{}, pruned: map[kid]*store.Object{},
		refs: map[string]map[string]string{}, prunedRefs: map[string]map[string]bool{},
		principals: map[string]principal{}, leftovers: map[kid]directory.Resource{},
	}
	for _, kind := range managedKinds {
		objs, err := listAll(ctx, r, kind)
		if err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
		p.stored[kind] = objs
		p.byID[kind] = make(map[string]*store.Object, len(objs))
		p.byKey[kind] = map[string]*store.Object{}
		for i := range objs {
			o := &objs[i]
			p.byID[kind][o.ID] = o
			if o.Key != "" {
				p.byKey[kind][o.Key] = o
			}
		}
		p.refs[kind] = map[string]string{}
		p.prunedRefs[kind] = map[string]bool{}
	}
	return p, nil
}

// fail records a problem at sub of entry i of section.
func (p *planner) fail(section string, i int, sub string, err error) {
	p.errs.add(p.m.errorAt(section, i, sub, err))
}

// failf records a formatted problem.
func (p *planner) failf(section string, i int, sub, format string, args ...any) {
	p.errs.add(p.m.errorf(section, i, sub, format, args...))
}

// run computes the plan, or every problem found on the way.
func (p *planner) run() (*Plan, error) {
	m := p.m
	p.matchKeyed(directory.KindUser, secUsers, len(m.Users), func(i int) any { return m.Users[i] })
	p.matchKeyed(directory.KindApplication, secApplications, len(m.Applications), func(i int) any { return m.Applications[i] })
	p.matchKeyed(directory.KindServicePrincipal, secServicePrincipals, len(m.ServicePrincipals), func(i int) any { return m.ServicePrincipals[i] })
	p.matchKeyed(directory.KindGroup, secGroups, len(m.Groups), func(i int) any {
		return directory.Group{GraphGroup: m.Groups[i].GraphGroup} // members are resolved below
	})
	p.matchKeyed(directory.KindNamedLocation, secNamedLocations, len(m.NamedLocations), func(i int) any { return m.NamedLocations[i] })
	p.matchKeyed(directory.KindIdentityProvider, secIdentityProviders, len(m.IdentityProviders), func(i int) any { return m.IdentityProviders[i].IdentityProvider })
	p.matchKeyed(directory.KindAppRoute, secAppRoutes, len(m.AppRoutes), func(i int) any { return m.AppRoutes[i] })
	p.matchKeyed(access.Kind, secCAPolicies, len(m.ConditionalAccessPolicies), func(i int) any { return m.ConditionalAccessPolicies[i] })
	p.matchKeyed(rbac.DefinitionKind, secRoleDefinitions, len(m.RoleDefinitions), func(i int) any { return m.RoleDefinitions[i] })
	p.matchKeyed(rbac.DenyKind, secDenyAssignments, len(m.DenyAssignments), func(i int) any { return m.DenyAssignments[i] })
	if err := p.settle(); err != nil {
		return nil, err
	}
	p.resolveMembers()
	p.checkCycles()
	p.checkPolicyLocations()
	if err := p.checkIdentityProviders(); err != nil {
		return nil, err
	}
	p.directoryRoleAssignments()
	p.roleAssignments()
	if err := p.settleAssignments(); err != nil {
		return nil, err
	}
	p.keepsOwner()
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	return p.plan()
}

// matchKeyed validates the entries of a kind with a natural key and
// matches each with a stored object: by id when the entry gives one that
// exists, else by key; an entry that matches nothing gets its own id, or a
// new one.
func (p *planner) matchKeyed(kind, section string, n int, entry func(i int) any) {
	items := make([]*item, 0, n)
	d := descriptor(kind)
	for i := range n {
		r, err := deepCopy(kind, entry(i))
		if err != nil {
			p.fail(section, i, "", err)
			continue
		}
		r.Normalize()
		stripReadOnly(r)
		invalid := r.Validate()
		if invalid != nil {
			p.fail(section, i, "", invalid)
		}
		key := d.KeyOf(r)
		if key == "" {
			if invalid == nil {
				p.failf(section, i, keyField[kind], "required: the manifest matches %ss by %s", noun[kind], keyField[kind])
			}
			continue
		}
		// An invalid entry still takes part in matching, so that what
		// refers to it does not add errors of its own; the plan stops
		// before writing anyway.
		items = append(items, &item{kind: kind, section: section, index: i, res: r, key: key, name: nameOf(r), invalid: invalid != nil})
	}
	// Ids first, so that an object renamed by id frees its old key for
	// another entry.
	for _, it := range items {
		if o := p.byID[kind][it.res.ObjectID()]; o != nil {
			p.claim(it, o)
		}
	}
	for _, it := range items {
		if it.existing != nil {
			continue
		}
		if o := p.byKey[kind][it.key]; o != nil && !p.matched[kid{kind, o.ID}] {
			p.claim(it, o) // an id the store does not know yields to the key
		} else if it.res.ObjectID() == "" {
			it.res.SetObjectID(directory.NewID())
		}
	}
	p.items[kind] = items
}

// claim matches it with the stored object o.
func (p *planner) claim(it *item, o *store.Object) {
	it.existing = o
	it.res.SetObjectID(o.ID)
	p.matched[kid{o.Kind, o.ID}] = true
}

// keyedKinds are the kinds with a natural key, which members and
// assignments refer to.
var keyedKinds = []string{directory.KindUser, directory.KindApplication, directory.KindServicePrincipal, directory.KindGroup, directory.KindNamedLocation, directory.KindIdentityProvider, directory.KindAppRoute, access.Kind, rbac.DefinitionKind, rbac.DenyKind}

// isPrincipal reports whether a kind can be a group member or hold a role.
func isPrincipal(kind string) bool {
	return kind == directory.KindUser || kind == directory.KindGroup || kind == directory.KindServicePrincipal
}

// settle decides what happens to the stored objects of keyed kinds that
// the manifest does not list (kept, or pruned), checks that the resulting
// directory has unique keys and ids, and indexes its principals.
func (p *planner) settle() error {
	owner := map[string]kid{} // users, groups and service principals share one id space
	for _, kind := range keyedKinds {
		for i := range p.stored[kind] {
			o := &p.stored[kind][i]
			k := kid{kind, o.ID}
			if p.matched[k] {
				continue
			}
			if p.opts.Prune && o.ManagedBy == ManagedBy {
				p.pruned[k] = o
			}
			if !isPrincipal(kind) {
				continue
			}
			if p.pruned[k] == nil {
				owner[o.ID] = k
			}
			r, err := fromObject(*o)
			if err != nil {
				return fmt.Errorf("apply: %w", err)
			}
			pr := principal{kind: kind, ref: refOf(r), name: nameOf(r), res: r}
			p.principals[o.ID] = pr
			if p.pruned[k] != nil {
				p.prunedRefs[kind][refKey(pr.ref)] = true
			} else {
				p.refs[kind][refKey(pr.ref)] = o.ID
				p.leftovers[k] = r
			}
		}
	}
	for _, kind := range keyedKinds {
		for _, it := range p.items[kind] {
			id := it.res.ObjectID()
			if o := p.byKey[kind][it.key]; o != nil && o.ID != id && !p.matched[kid{kind, o.ID}] && p.pruned[kid{kind, o.ID}] == nil {
				p.failf(it.section, it.index, keyField[kind], "%s %q is taken by another %s (id %s) that the manifest does not list",
					keyField[kind], it.key, noun[kind], o.ID)
				continue
			}
			if !isPrincipal(kind) {
				continue
			}
			p.principals[id] = principal{kind: kind, ref: refOf(it.res), name: it.name, res: it.res}
			p.refs[kind][refKey(refOf(it.res))] = id
			if other, ok := owner[id]; ok && other.kind != kind {
				p.failf(it.section, it.index, "id", "%s is already the id of a %s", id, noun[other.kind])
				it.invalid = true
				continue
			}
			owner[id] = kid{kind, id}
		}
	}
	return nil
}

// resolve finds the principal of the resulting directory that ref names,
// or records why there is none at sub of entry i of section.
func (p *planner) resolve(section string, i int, sub, kind, ref string) (string, bool) {
	if id, ok := p.refs[kind][refKey(ref)]; ok {
		return id, true
	}
	if ref == "" {
		p.failf(section, i, sub, "must not be empty")
	} else if p.prunedRefs[kind][refKey(ref)] {
		p.failf(section, i, sub, "%s %q was made by an earlier apply and is no longer in the manifest, so pruning deletes it", noun[kind], ref)
	} else {
		p.failf(section, i, sub, "no %s %q in the manifest or the directory", noun[kind], ref)
	}
	return "", false
}

// resolveMembers turns each manifest group's member references into ids.
func (p *planner) resolveMembers() {
	for _, it := range p.items[directory.KindGroup] {
		g := it.res.(*directory.Group)
		mem := p.m.Groups[it.index].Members
		if mem == nil {
			continue
		}
		lists := []struct {
			field, kind string
			refs        []string
		}{
			{"users", directory.KindUser, mem.Users},
			{"groups", directory.KindGroup, mem.Groups},
			{"servicePrincipals", directory.KindServicePrincipal, mem.ServicePrincipals},
		}
		for _, l := range lists {
			seen := map[string]int{}
			for j, ref := range l.refs {
				sub := strictjson.Index("members."+l.field, j)
				if prev, dup := seen[refKey(ref)]; dup {
					p.failf(it.section, it.index, sub, "repeats members.%s[%d]", l.field, prev)
					continue
				}
				seen[refKey(ref)] = j
				id, ok := p.resolve(it.section, it.index, sub, l.kind, ref)
				if !ok {
					continue
				}
				if l.kind == directory.KindGroup && id == g.ID {
					p.failf(it.section, it.index, sub, "a group cannot be a member of itself")
					continue
				}
				if l.kind == directory.KindGroup && g.RoleAssignable() {
					p.failf(it.section, it.index, sub, "a role-assignable group (isAssignableToRole) cannot contain groups")
					continue
				}
				g.Members = append(g.Members, id)
			}
		}
		g.Normalize()
		if it.invalid {
			continue
		}
		if err := g.Validate(); err != nil {
			p.fail(it.section, it.index, "", err)
		}
	}
}

// checkCycles looks for a nesting cycle in the groups of the resulting
// directory: the manifest's and the stored ones it keeps.
func (p *planner) checkCycles() {
	adj := map[string][]edge{}
	var roots []string
	for _, it := range p.items[directory.KindGroup] {
		id := it.res.ObjectID()
		roots = append(roots, id)
		if mem := p.m.Groups[it.index].Members; mem != nil {
			for j, ref := range mem.Groups {
				if to, ok := p.refs[directory.KindGroup][refKey(ref)]; ok && to != id {
					adj[id] = append(adj[id], edge{to, it, strictjson.Index("members.groups", j)})
				}
			}
		}
	}
	var stored []string
	for k, r := range p.leftovers {
		if k.kind != directory.KindGroup {
			continue
		}
		stored = append(stored, k.id)
		for _, m := range r.(*directory.Group).Members {
			if pr, ok := p.principals[m]; ok && pr.kind == directory.KindGroup && p.pruned[kid{pr.kind, m}] == nil {
				adj[k.id] = append(adj[k.id], edge{to: m})
			}
		}
	}
	slices.Sort(stored)
	roots = append(roots, stored...)

	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var path []string // grey groups, from the root
	var via []edge    // via[i] leads from path[i] to path[i+1]
	var visit func(id string) bool
	visit = func(id string) bool {
		color[id] = grey
		path = append(path, id)
		for _, e := range adj[id] {
			switch color[e.to] {
			case grey:
				start := slices.Index(path, e.to)
				p.reportCycle(append(slices.Clone(path[start:]), e.to), append(slices.Clone(via[start:]), e))
				return true
			case white:
				via = append(via, e)
				if visit(e.to) {
					return true
				}
				via = via[:len(via)-1]
			}
		}
		path = path[:len(path)-1]
		color[id] = black
		return false
	}
	for _, id := range roots {
		if color[id] == white && visit(id) {
			return
		}
	}
}

// edge is a nesting: group from contains group to.
type edge struct {
	to  string
	it  *item  // the manifest group the edge comes from; nil for a stored group
	sub string // path of the reference in that entry
}

// reportCycle records a nesting cycle (groups[0] contains groups[1] ...
// contains groups[n] == groups[0], edges[i] leading from groups[i]) at
// the reference that closes it, or else the last one in the cycle that a
// manifest entry makes.
func (p *planner) reportCycle(groups []string, edges []edge) {
	at := -1
	for i := len(edges) - 1; i >= 0; i-- {
		if edges[i].it != nil {
			at = i
			break
		}
	}
	// Start the cycle at the group whose reference is reported.
	start := max(at, 0)
	ring := append(slices.Clone(groups[start:len(groups)-1]), groups[:start+1]...)
	names := make([]string, len(ring))
	for i, id := range ring {
		names[i] = fmt.Sprintf("%q", p.principals[id].name)
	}
	msg := "group nesting cycle: " + strings.Join(names, " → ")
	if at < 0 {
		p.errs.add(&Error{Message: msg + " among groups the manifest does not list"})
		return
	}
	e := edges[at]
	p.failf(e.it.section, e.it.index, e.sub, "%s", msg)
}

// checkPolicyLocations makes sure every named location a conditional
// access policy of the resulting directory names exists in it: a policy
// with a dangling location could not be compiled, and Entra refuses to
// delete a location a policy uses.
func (p *planner) checkPolicyLocations() {
	const loc = directory.KindNamedLocation
	exists := func(id string) bool {
		for _, it := range p.items[loc] {
			if it.res.ObjectID() == id {
				return true
			}
		}
		return p.byID[loc][id] != nil && p.pruned[kid{loc, id}] == nil
	}
	dangling := func(pol *access.Policy, report func(path, id string)) {
		if pol.Conditions.Locations == nil {
			return
		}
		for _, list := range []struct {
			name string
			ids  []string
		}{{"includeLocations", pol.Conditions.Locations.IncludeLocations}, {"excludeLocations", pol.Conditions.Locations.ExcludeLocations}} {
			for j, id := range list.ids {
				id = strings.ToLower(id)
				if id == "all" || id == "alltrusted" || id == access.MFATrustedIPsLocation || exists(id) {
					continue
				}
				report(strictjson.Index("conditions.locations."+list.name, j), id)
			}
		}
	}
	for _, it := range p.items[access.Kind] {
		dangling(&it.res.(*caPolicy).Policy, func(path, id string) {
			p.failf(it.section, it.index, path, "no named location with id %s in the manifest or the directory", id)
		})
	}
	for i := range p.stored[access.Kind] {
		o := &p.stored[access.Kind][i]
		if p.matched[kid{access.Kind, o.ID}] || p.pruned[kid{access.Kind, o.ID}] != nil {
			continue
		}
		pol, err := access.FromObject(*o)
		if err != nil {
			p.errs.add(&Error{Message: err.Error()})
			continue
		}
		dangling(pol, func(path, id string) {
			p.errs.add(&Error{Message: fmt.Sprintf("conditional access policy %q still names named location %s (%s), which the plan deletes", pol.DisplayName, id, path)})
		})
	}
}
