package rbac

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/schedule"
)

// Principals is what the engine needs to know about a principal: the ids
// of the groups it belongs to, transitively. It must not allocate: Check
// calls it on the hot path. *directory.Snapshot serves it.
type Principals interface {
	TransitiveMemberOf(id string) []string
}

// Condition is a compiled ABAC condition (package rbac/condition provides
// them through Options.CompileCondition).
type Condition interface {
	Evaluate(req *ConditionRequest) (bool, error)
}

// ConditionAttributes serves the @Request, @Resource, @Principal and
// @Environment attributes of one request to a Condition. source is
// "Request", "Resource", "Principal" or "Environment"; name is the
// attribute name as the condition writes it.
type ConditionAttributes interface {
	Attribute(source, name string) (values []string, ok bool)
}

// ConditionRequest is what a Condition sees of the request being checked.
// It lives in the Decision and is reused; a Condition must not keep it.
type ConditionRequest struct {
	Action       string // as the request spelled it
	SubOperation string
	DataAction   bool
	Scope        string
	PrincipalID  string
	Attributes   ConditionAttributes // may be nil
}

// Options tune Compile.
type Options struct {
	// Principals resolves group memberships when a Request carries none.
	Principals Principals
	// Hierarchy names the parent of scopes whose parent is not their path
	// prefix: a subscription's management group, a management group's
	// parent group ("/subscriptions/s1" → "/providers/Microsoft.Management/managementGroups/mg1").
	// Scopes without an entry have their path parent; every scope is
	// below "/".
	Hierarchy map[string]string
	// CompileCondition compiles the ABAC condition of an assignment or of
	// a role's permission block. When nil, or when it fails for one
	// condition, that assignment or block does not grant: a condition that
	// cannot be evaluated never widens access (the decision's Reason says
	// ConditionNotEvaluable).
	CompileCondition func(expr, version string) (Condition, error)
}

// Request is one access check.
type Request struct {
	PrincipalID string
	// Groups are the principal's transitive group ids. When nil, the
	// engine asks Options.Principals; pass an empty non-nil slice for none.
	Groups []string
	// Action is an action (control plane) or, with DataAction, a data
	// action, e.g. "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read".
	Action       string
	DataAction   bool
	SubOperation string
	// Scope is where the action happens: "/subscriptions/s/resourceGroups/rg/...",
	// or a Verity scope such as "/apps/payroll" or "/directory/users/{id}".
	Scope      string
	Attributes ConditionAttributes // for ABAC conditions; may be nil
	// AllGrants asks Check to list every granting assignment in
	// Decision.GrantedBy rather than stop at the first.
	AllGrants bool
	// Now is when the request happens: an assignment with a window
	// (StartDateTime, EndDateTime) grants only while Now is in it, so that
	// an activation stops granting the moment it ends, whatever the age of
	// the engine. The zero Now means the current time (time.Now, read only
	// when an assignment with a window is met), never "ignore windows";
	// enforcement points pass their clock.
	Now time.Time
}

// Reason says why a Decision came out as it did.
type Reason uint8

// Reasons.
const (
	ReasonNone                  Reason = iota
	ReasonGranted                      // a role assignment grants the action
	ReasonDenyAssignment               // a deny assignment blocks it (DeniedBy)
	ReasonNoAssignment                 // no role assignment of the principal applies at the scope
	ReasonNotInRole                    // assignments apply, but no role's permissions contain the action
	ReasonConditionFalse               // a role grants the action but its condition does not hold
	ReasonConditionNotEvaluable        // a role grants the action under a condition that cannot be evaluated
	ReasonInvalidRequest               // the request lacks a principal, action or absolute scope
)

var reasonText = [...]string{
	ReasonNone:                  "not evaluated",
	ReasonGranted:               "granted by a role assignment",
	ReasonDenyAssignment:        "blocked by a deny assignment",
	ReasonNoAssignment:          "no role assignment applies to the principal at this scope",
	ReasonNotInRole:             "no assigned role permits the action at this scope",
	ReasonConditionFalse:        "the condition of the granting assignment does not hold",
	ReasonConditionNotEvaluable: "the granting assignment has a condition that cannot be evaluated",
	ReasonInvalidRequest:        "invalid request: principal, action and an absolute scope are required",
}

func (r Reason) String() string {
	if int(r) < len(reasonText) {
		return reasonText[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Grant is one role assignment (and permission block of its role) that
// grants the checked action.
type Grant struct {
	AssignmentID     string
	PrincipalID      string // the user, or the group through which the user holds it
	RoleDefinitionID string
	RoleName         string
	Scope            string // the assignment's scope
	Block            int    // index of the role's permission block
	// EndDateTime is when the assignment stops being in force; nil when
	// it does not end. It is the compiled Assignment's: do not modify.
	EndDateTime *time.Time
}

// DenyRef identifies a deny assignment. It is shared by the engine:
// callers must not modify it.
type DenyRef struct {
	ID                 string
	DenyAssignmentName string
	Scope              string
}

// Decision is the result of Check. Reuse one per goroutine: Check resets
// it and keeps its buffers, so the allow path does not allocate once the
// buffers have grown to the largest request seen.
type Decision struct {
	Allowed  bool
	Reason   Reason
	DeniedBy *DenyRef

	engine            *Engine
	blocks            actionBlocks // the blocks that permit the action, when cached
	grants            []Grant
	grantsBuilt       bool
	action, scope, id []byte
	pids              []int32
	spans             []span // assignments of the request's principals that may apply: byPrincipal.entries[start:end]
	probes            []probe
	pending           []pendingGrant
	cond              ConditionRequest
	sink              uint64 // keeps the prefetching loads of Check alive
	prefixes          scopePrefixes
	now               int64 // Request.Now in unix nanoseconds, once nowSet
	nowSet            bool
}

// Engine is an immutable, compiled set of role definitions, role
// assignments and deny assignments. It is safe for concurrent use.
type Engine struct {
	opts Options

	roles []compiledRole
	// blockStart numbers the roles' permission blocks consecutively: role
	// r's block b is blockStart[r]+b. actions caches which blocks permit
	// an action.
	blockStart []int32
	actions    actionCache
	roleIndex  map[string]int32 // lower-case GUID and role name

	// scopes are interned lower-case scope strings; chains[i] lists the
	// scope ids of i and all its ancestors, i first.
	scopeIndex map[string]int32
	scopeNames []string
	chains     [][]int32
	maxScope   int // length of the longest interned scope: longer prefixes need no lookup
	scopes     scopeTable

	// principals are interned lower-case principal ids (of assignments and
	// deny assignments); byPrincipal[p] lists p's assignments.
	principalIndex map[string]int32 // ids that are not GUIDs
	guidIndex      map[guidKey]int32
	principalNames []string
	// byPrincipal[p] is p's assignments as compact entries, contiguous per
	// principal (CSR: entries[off[p]:off[p+1]]), so that the hot path reads
	// a principal's assignments from a cache line or two instead of
	// chasing each assignment.
	byPrincipal byPrincipalIndex
	// ptable finds a GUID principal and its byPrincipal range in one probe.
	ptable principalTable
	// subjects resolves the principals Options.Principals lists, with
	// their groups, once for all requests (see PrincipalLister).
	subjects    subjectTable
	byScope     [][]int32 // scope id → assignments there
	assignments []compiledAssignment

	// windows are the time-bound assignments' windows, densely: few
	// assignments have one, so this stays small and in cache.
	windows []schedule.Window

	denies   []compiledDeny
	deniesAt [][]int32 // scope id → deny assignments there
	// denyInChain[s] reports whether a deny assignment sits at s or one of
	// its ancestors, so that Check skips the deny walk where none can apply.
	denyInChain []bool
	denyRefs    []DenyRef
	skipped     []Skipped
	assignCount int
}

// Skipped is an assignment (or a condition) Compile left out, and why.
type Skipped struct {
	ID     string
	Reason string
}

type compiledRole struct {
	def    *RoleDefinition
	blocks []compiledBlock
}

type compiledBlock struct {
	actions, notActions, dataActions, notDataActions matcher
	cond                                             Condition
	condUnevaluable                                  bool
}

func (b *compiledBlock) permits(a []byte, data bool) bool {
	if data {
		return b.dataActions.match(a) && !b.notDataActions.match(a)
	}
	return b.actions.match(a) && !b.notActions.match(a)
}

type compiledAssignment struct {
	src *Assignment
	// What a Grant reports, copied here so that a grant reads one record
	// rather than the caller's Assignment and the principal table.
	id, scopeName, principalName string
	role                         int32
	scope                        int32
	principal                    int32
	// win indexes Engine.windows when timed. Both sit in what would be
	// padding: a permanent assignment costs nothing more.
	win             int32
	cond            Condition
	condUnevaluable bool
	timed           bool
}

type compiledDeny struct {
	blocks     []compiledBlock
	everyone   bool
	principals []int32 // sorted
	excludes   []int32 // sorted
	childless  bool    // DoNotApplyToChildScopes
	scope      int32
}

// Compile builds an Engine. defs are custom role definitions; Azure's and
// Verity's built-in roles are always included, and a custom role may not
// reuse a built-in GUID or role name. Assignments name their role by GUID,
// ARM id or role name. An assignment whose role is unknown, or whose scope
// is outside its role's AssignableScopes (following Options.Hierarchy), is
// left out and listed by Skipped: Azure refuses to create such assignments,
// and the engine never lets one grant. Bad input that would make the whole
// engine wrong (duplicate roles, a malformed scope) is an error.
func Compile(defs []RoleDefinition, assignments []Assignment, denies []DenyAssignment, opts Options) (*Engine, error) {
	e := &Engine{
		opts:           opts,
		roleIndex:      map[string]int32{},
		scopeIndex:     map[string]int32{},
		principalIndex: map[string]int32{},
		guidIndex:      map[guidKey]int32{},
	}
	builtins := BuiltinRoles()
	all := make([]*RoleDefinition, 0, len(builtins)+len(defs))
	for i := range builtins {
		all = append(all, &builtins[i])
	}
	for i := range defs {
		d := defs[i]
		d.Normalize()
		all = append(all, &d)
	}
	for i, d := range all {
		for _, key := range []string{strings.ToLower(d.Name), strings.ToLower(d.RoleName)} {
			if key == "" {
				continue
			}
			if _, dup := e.roleIndex[key]; dup {
				return nil, fmt.Errorf("compile rbac: role definition %q (%s): name or GUID already defined", d.RoleName, d.Name)
			}
			e.roleIndex[key] = int32(i)
		}
		r := compiledRole{def: d, blocks: make([]compiledBlock, len(d.Permissions))}
		for j := range d.Permissions {
			r.blocks[j] = e.compileBlock(&d.Permissions[j], "role "+d.RoleName)
		}
		e.roles = append(e.roles, r)
	}

	e.blockStart = make([]int32, len(e.roles)+1)
	for r := range e.roles {
		e.blockStart[r+1] = e.blockStart[r] + int32(len(e.roles[r].blocks))
	}

	// Intern scopes: root first, then the hierarchy (so that walks from a
	// request find its jumps), then assignments and denies.
	e.intern("/")
	for child, parent := range opts.Hierarchy {
		if err := checkScope(child); err != nil {
			return nil, fmt.Errorf("compile rbac: hierarchy: %w", err)
		}
		if err := checkScope(parent); err != nil {
			return nil, fmt.Errorf("compile rbac: hierarchy: %w", err)
		}
		e.intern(child)
		e.intern(parent)
	}
	hier := make(map[string]string, len(opts.Hierarchy))
	for c, p := range opts.Hierarchy {
		hier[lowerString(c)] = lowerString(p)
	}

	type pending struct {
		a    *Assignment
		role int32
	}
	var ok []pending
	for i := range assignments {
		a := &assignments[i]
		ri, found := e.roleIndex[strings.ToLower(roleRef(a.RoleDefinitionID))]
		if !found {
			e.skipped = append(e.skipped, Skipped{a.ID, fmt.Sprintf("unknown role definition %q", a.RoleDefinitionID)})
			continue
		}
		if a.PrincipalID == "" {
			e.skipped = append(e.skipped, Skipped{a.ID, "no principal"})
			continue
		}
		scope := a.Scope
		if scope == "" {
			scope = "/"
		}
		if err := checkScope(scope); err != nil {
			return nil, fmt.Errorf("compile rbac: assignment %s: %w", a.ID, err)
		}
		e.intern(scope)
		ok = append(ok, pending{a, ri})
	}
	for i := range denies {
		if err := checkScope(denies[i].Scope); err != nil {
			return nil, fmt.Errorf("compile rbac: deny assignment %s: %w", denies[i].ID, err)
		}
		e.intern(denies[i].Scope)
	}
	e.chains = make([][]int32, len(e.scopeNames))
	for i := range e.scopeNames {
		e.chains[i] = e.ancestors(e.scopeNames[i], hier)
	}
	e.scopes = buildScopeTable(e.scopeNames, e.chains)

	// Assignable scopes: a role's assignable scopes, as scope strings, must
	// contain the assignment scope; through the hierarchy a management
	// group contains its subscriptions.
	e.byScope = make([][]int32, len(e.scopeNames))
	for _, p := range ok {
		a := p.a
		scope := e.scopeIndex[lowerString(orRoot(a.Scope))]
		if !e.assignableAt(e.roles[p.role].def, scope) {
			e.skipped = append(e.skipped, Skipped{a.ID, fmt.Sprintf("role %q is not assignable at %s", e.roles[p.role].def.RoleName, a.Scope)})
			continue
		}
		ca := compiledAssignment{src: a, role: p.role, scope: scope, principal: e.principal(a.PrincipalID), id: a.ID, scopeName: a.Scope}
		ca.principalName = e.principalNames[ca.principal]
		if a.Condition != "" {
			ca.cond, ca.condUnevaluable = e.compileCondition(a.Condition, a.ConditionVersion, "assignment "+a.ID)
		}
		if w, ok := a.Schedule.Window(); ok {
			ca.timed, ca.win = true, int32(len(e.windows))
			e.windows = append(e.windows, w)
		}
		idx := int32(len(e.assignments))
		e.assignments = append(e.assignments, ca)
		e.byScope[scope] = append(e.byScope[scope], idx)
	}
	e.assignCount = len(e.assignments)

	e.deniesAt = make([][]int32, len(e.scopeNames))
	for i := range denies {
		d := &denies[i]
		cd := compiledDeny{scope: e.scopeIndex[lowerString(d.Scope)], childless: d.DoNotApplyToChildScopes}
		for j := range d.Permissions {
			cd.blocks = append(cd.blocks, e.compileBlock(&d.Permissions[j], "deny assignment "+d.ID))
		}
		for _, p := range d.Principals {
			if p.everyone() {
				cd.everyone = true
				continue
			}
			cd.principals = append(cd.principals, e.principal(p.ID))
		}
		for _, p := range d.ExcludePrincipals {
			cd.excludes = append(cd.excludes, e.principal(p.ID))
		}
		slices.Sort(cd.principals)
		slices.Sort(cd.excludes)
		e.denies = append(e.denies, cd)
		e.denyRefs = append(e.denyRefs, DenyRef{ID: d.ID, DenyAssignmentName: d.DenyAssignmentName, Scope: d.Scope})
		e.deniesAt[cd.scope] = append(e.deniesAt[cd.scope], int32(i))
	}
	e.byPrincipal = buildPrincipalIndex(e.assignments, len(e.principalNames))
	e.ptable = buildPrincipalTable(e.guidIndex, &e.byPrincipal)
	if l, ok := opts.Principals.(PrincipalLister); ok {
		e.subjects = e.buildSubjects(l)
	}
	e.denyInChain = make([]bool, len(e.scopeNames))
	for i, chain := range e.chains {
		for _, c := range chain {
			if len(e.deniesAt[c]) > 0 {
				e.denyInChain[i] = true
				break
			}
		}
	}
	return e, nil
}

type byPrincipalIndex struct {
	off     []int32
	entries []principalEntry
	// fences index long spans (more than longSpan entries): the scope of
	// every fenceStride-th entry, from fenceAt[p], so that finding a scope
	// in a principal's entries reads a line or two of fences and one line
	// of entries instead of a binary search's chain of scattered lines.
	fences  []int32
	fenceAt []int32 // per principal; -1 for a short span
}

// span is a principal's range of entries and, for a long one, where its
// fences start.
type span struct{ start, end, fence int32 }

const fenceStride = 8

// search returns the index in entries[sp.start:sp.end] (sorted by scope)
// of the first entry whose scope is at least sc. The fences narrow it to
// fenceStride entries.
func (x *byPrincipalIndex) search(sp span, sc int32) int {
	i := x.block(sp, sc)
	n := int(sp.end - sp.start)
	entries := x.entries[sp.start:sp.end]
	for i < n && entries[i].scope < sc {
		i++
	}
	return i
}

// block returns the index in entries[sp.start:sp.end] where the run of
// fenceStride entries that holds sc's first entry (if any) begins.
func (x *byPrincipalIndex) block(sp span, sc int32) int {
	n := int(sp.end - sp.start)
	fences := x.fences[sp.fence : int(sp.fence)+(n+fenceStride-1)/fenceStride]
	k, _ := slices.BinarySearch(fences, sc) // first fence ≥ sc
	if k == 0 {
		return 0
	}
	return (k - 1) * fenceStride
}

// probe is one request principal on its way through the principal table.
type probe struct {
	k0, k1 uint64
	home   uint64
	guid   bool
}

// pendingGrant is a granting assignment and block found by the scan, turned
// into a Grant after it.
type pendingGrant struct {
	assignment, role, block int32
}

type principalEntry struct {
	scope, role, assignment int32
	conditional             bool  // the assignment has a condition (evaluable or not)
	bit                     uint8 // scopeBit8(scope)
	// win is 0 for an assignment without a window, else its index in
	// Engine.windows plus one, so that Check finds the window without
	// reading the assignment's record; winFar when the index does not fit
	// and the record must be read.
	win uint16
}

func buildPrincipalIndex(as []compiledAssignment, principals int) byPrincipalIndex {
	idx := byPrincipalIndex{off: make([]int32, principals+1), entries: make([]principalEntry, len(as))}
	for i := range as {
		idx.off[as[i].principal+1]++
	}
	for p := 1; p <= principals; p++ {
		idx.off[p] += idx.off[p-1]
	}
	next := slices.Clone(idx.off[:principals])
	for i := range as {
		p := as[i].principal
		idx.entries[next[p]] = principalEntry{scope: as[i].scope, role: as[i].role, assignment: int32(i),
			conditional: as[i].cond != nil || as[i].condUnevaluable, bit: scopeBit8(as[i].scope), win: entryWin(&as[i])}
		next[p]++
	}
	// Within a principal, entries are ordered by scope (then assignment),
	// so that Check can find a long span's entries at one scope by binary
	// search instead of reading them all.
	for p := range principals {
		slices.SortFunc(idx.entries[idx.off[p]:idx.off[p+1]], func(a, b principalEntry) int {
			if a.scope != b.scope {
				return cmp.Compare(a.scope, b.scope)
			}
			return cmp.Compare(a.assignment, b.assignment)
		})
	}
	idx.fenceAt = make([]int32, principals)
	for p := range principals {
		idx.fenceAt[p] = -1
		if idx.off[p+1]-idx.off[p] <= longSpan {
			continue
		}
		idx.fenceAt[p] = int32(len(idx.fences))
		for i := idx.off[p]; i < idx.off[p+1]; i += fenceStride {
			idx.fences = append(idx.fences, idx.entries[i].scope)
		}
	}
	return idx
}

// spanOf is principal p's span.
func (x *byPrincipalIndex) spanOf(p int32) span { return span{x.off[p], x.off[p+1], x.fenceAt[p]} }

func (x *byPrincipalIndex) of(p int32) []principalEntry { return x.entries[x.off[p]:x.off[p+1]] }

func orRoot(s string) string {
	if s == "" {
		return "/"
	}
	return s
}

func (e *Engine) compileBlock(p *Permission, owner string) compiledBlock {
	b := compiledBlock{
		actions:        compileMatcher(p.Actions),
		notActions:     compileMatcher(p.NotActions),
		dataActions:    compileMatcher(p.DataActions),
		notDataActions: compileMatcher(p.NotDataActions),
	}
	if p.Condition != "" {
		b.cond, b.condUnevaluable = e.compileCondition(p.Condition, p.ConditionVersion, owner)
	}
	return b
}

func (e *Engine) compileCondition(expr, version, owner string) (Condition, bool) {
	if e.opts.CompileCondition == nil {
		return nil, true
	}
	c, err := e.opts.CompileCondition(expr, version)
	if err != nil || c == nil {
		e.skipped = append(e.skipped, Skipped{owner, fmt.Sprintf("condition does not compile (never grants): %v", err)})
		return nil, true
	}
	return c, false
}

func (e *Engine) intern(scope string) int32 {
	s := canonicalScope(scope)
	if i, ok := e.scopeIndex[s]; ok {
		return i
	}
	i := int32(len(e.scopeNames))
	e.scopeIndex[s] = i
	e.scopeNames = append(e.scopeNames, s)
	e.maxScope = max(e.maxScope, len(s))
	return i
}

// canonicalScope lowers a scope and drops a trailing slash.
func canonicalScope(s string) string {
	s = lowerString(s)
	if len(s) > 1 {
		s = strings.TrimSuffix(s, "/")
	}
	return s
}

func (e *Engine) principal(id string) int32 {
	id = lowerString(id)
	if i, _, ok := e.lookupPrincipal(id, nil); ok {
		return i
	}
	i := int32(len(e.principalNames))
	if k, ok := parseGUIDKey(id); ok {
		e.guidIndex[k] = i
	} else {
		e.principalIndex[id] = i
	}
	e.principalNames = append(e.principalNames, id)
	return i
}

// ancestors lists the interned scopes at and above s (lower-case), nearest
// first, following the hierarchy where it names a parent and the path
// otherwise, ending at "/".
func (e *Engine) ancestors(s string, hier map[string]string) []int32 {
	var chain []int32
	seen := map[string]bool{}
	for cur := s; ; {
		if seen[cur] {
			break // a cycle in the hierarchy: stop rather than loop
		}
		seen[cur] = true
		if i, ok := e.scopeIndex[cur]; ok && cur != "/" {
			chain = append(chain, i)
		}
		if cur == "/" {
			break
		}
		if p, ok := hier[cur]; ok {
			cur = p
			continue
		}
		cur = pathParent(cur)
	}
	return append(chain, 0) // "/" is interned first
}

func pathParent(s string) string {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "/"
	}
	return s[:i]
}

func (e *Engine) assignableAt(d *RoleDefinition, scope int32) bool {
	for _, as := range d.AssignableScopes {
		target, ok := e.scopeIndex[canonicalScope(as)]
		if ok && slices.Contains(e.chains[scope], target) {
			return true
		}
		// An assignable scope may also be a path prefix that no assignment
		// or hierarchy entry interned.
		if !ok && ScopeContains(as, e.scopeNames[scope]) {
			return true
		}
	}
	return false
}

// CanAssignAt reports whether the role (GUID, ARM id or name) may be
// assigned at scope, following Options.Hierarchy.
func (e *Engine) CanAssignAt(role, scope string) bool {
	ri, ok := e.roleIndex[strings.ToLower(roleRef(role))]
	if !ok || checkScope(scope) != nil {
		return false
	}
	chain, _ := e.resolveScope(lower(nil, scope))
	d := e.roles[ri].def
	for _, as := range d.AssignableScopes {
		if ScopeContains(as, scope) {
			return true
		}
		if t, ok := e.scopeIndex[canonicalScope(as)]; ok && slices.Contains(chain, t) {
			return true
		}
	}
	return false
}

// Skipped lists the assignments and conditions Compile left out.
func (e *Engine) Skipped() []Skipped { return e.skipped }

// Role returns a role definition the engine knows, by GUID, ARM id or name.
func (e *Engine) Role(ref string) (*RoleDefinition, bool) {
	i, ok := e.roleIndex[strings.ToLower(roleRef(ref))]
	if !ok {
		return nil, false
	}
	return e.roles[i].def, true
}

// resolveScope finds the chain of interned ancestors of the lower-case
// scope s by trying its path prefixes, longest first; exact reports whether
// s itself is interned (chain[0] is s).
func (e *Engine) resolveScope(s []byte) (chain []int32, exact bool) {
	var ps scopePrefixes
	e.prepareScope(&ps, s)
	return e.finishScope(&ps, s)
}

// scopePrefixes is a request scope's candidate prefixes on their way
// through the scope table.
type scopePrefixes struct {
	k  int
	ns [maxPrefixes]int32
	hs [maxPrefixes]uint64
}

// prepareScope hashes s's prefixes and touches their table slots and the
// name of a slot that matches, so that finishScope, called after other
// lookups have been started, finds them in cache.
func (e *Engine) prepareScope(ps *scopePrefixes, s []byte) uint64 {
	if len(s) > 1 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	ps.k = -1
	if len(e.scopes.slots) == 0 {
		return 0
	}
	ps.k = prefixHashes(s, &ps.ns, &ps.hs)
	var touch uint64
	for j := ps.k - 1; j >= 0; j-- {
		if int(ps.ns[j]) > e.maxScope {
			continue
		}
		t := &e.scopes
		sl := &t.slots[ps.hs[j]>>t.shift]
		if sl.h == ps.hs[j] && sl.id1 != 0 {
			touch += uint64(t.names[sl.nameOff]) + uint64(t.names[sl.nameOff+sl.nameLen-1]) + uint64(t.chains[sl.chainOff])
			break
		}
	}
	return touch
}

// finishScope is resolveScope for s after prepareScope.
func (e *Engine) finishScope(ps *scopePrefixes, s []byte) (chain []int32, exact bool) {
	if len(s) > 1 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	if ps.k > 0 {
		for j := ps.k - 1; j >= 0; j-- {
			n := int(ps.ns[j])
			if n > e.maxScope {
				continue
			}
			if sl, ok := e.scopes.find(s[:n], ps.hs[j]); ok {
				return sl.chain(&e.scopes), n == len(s)
			}
		}
		return e.chains[0], len(s) == 1
	}
	for n := len(s); n > 0; {
		if n <= e.maxScope {
			if i, ok := e.scopeIndex[string(s[:n])]; ok {
				return e.chains[i], n == len(s)
			}
		}
		n = lastSlash(s[:n])
		if n == 0 {
			break
		}
	}
	return e.chains[0], len(s) == 1
}

func lastSlash(s []byte) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '/' {
			return i
		}
	}
	return 0
}
