package rbac

import "slices"

// Check decides whether req.PrincipalID may perform req.Action at
// req.Scope, following Azure's documented order: the deny assignments that
// apply at the scope (it or an ancestor; not below a deny that does not
// apply to child scopes) and name the principal or one of its groups (or
// everyone), minus excluded principals, block first; then any role
// assignment of the principal or its groups at the scope or an ancestor
// whose role permits the action on the right plane (Actions − NotActions,
// or DataActions − NotDataActions, within one permission block) grants it,
// if its conditions hold and, when it has a window, Request.Now is in it.
// Assignments are additive; NotActions never deny. Deny assignments have
// no window.
//
// Check fills res (reset first) and does not allocate once res's buffers
// have grown. GrantedBy names the first granting assignment and block it
// finds (the principal's own assignments before its groups'; the order is
// fixed for a given engine and request), and stops there: deny
// assignments are already ruled out, and one grant decides. With
// Request.AllGrants it lists every granting assignment and block, for
// explanations and reviews.
func (e *Engine) Check(req *Request, res *Decision) {
	res.Allowed, res.Reason, res.DeniedBy = false, ReasonNone, nil
	res.engine, res.grantsBuilt, res.nowSet = e, false, false
	res.pending = res.pending[:0]
	res.pids = res.pids[:0]
	res.spans = res.spans[:0]
	if req.PrincipalID == "" || req.Action == "" || len(req.Scope) == 0 || req.Scope[0] != '/' {
		res.Reason = ReasonInvalidRequest
		return
	}
	// A listed principal asked about without groups: its subject, resolved
	// at compile time. Its slot's address is known before the scope is
	// hashed, so the slot's miss overlaps that work.
	var sub *subjectSlot
	var k0, k1, home uint64
	if req.Groups == nil && len(e.subjects.slots) > 0 {
		var ok bool
		if k0, k1, ok = parseGUIDWords(req.PrincipalID); ok {
			home = e.subjects.home(k0, k1)
			res.sink = uint64(e.subjects.slots[home].n1)
			sub = &e.subjects.slots[home] // a probe start, confirmed below
		}
	}
	res.action = lower(res.action, req.Action)
	res.blocks = e.blocksFor(res.action, req.DataAction)
	res.scope = lower(res.scope, req.Scope)
	// Start the scope's and the principals' lookups before finishing
	// either, so that their cache misses overlap.
	touch := e.prepareScope(&res.prefixes, res.scope)
	var groups []string
	if sub != nil {
		if sub = e.subjects.findFrom(k0, k1, home); sub != nil {
			spans := e.subjects.of(sub)
			if len(spans) > 0 {
				touch += uint64(spans[0].pid) + uint64(spans[len(spans)-1].pid)
			}
		}
	}
	if sub == nil {
		groups = req.Groups
		if groups == nil && e.opts.Principals != nil {
			groups = e.opts.Principals.TransitiveMemberOf(req.PrincipalID)
		}
		touch += e.probePrincipals(res, req.PrincipalID, groups)
	}
	res.sink += touch
	chain, exact := e.finishScope(&res.prefixes, res.scope)
	var filter scopeFilter
	for _, sc := range chain {
		filter.add(scopeBit8(sc))
	}
	if sub != nil {
		e.subjectSpans(res, sub, &filter)
	} else {
		e.findPrincipals(res, req.PrincipalID, groups, &filter)
	}

	// Deny assignments first.
	if e.denyInChain[chain[0]] {
		for i, sc := range chain {
			for _, di := range e.deniesAt[sc] {
				d := &e.denies[di]
				if d.childless && (i != 0 || !exact) {
					continue
				}
				if !d.appliesTo(res.pids) {
					continue
				}
				for b := range d.blocks {
					if d.blocks[b].permits(res.action, req.DataAction) {
						res.Reason = ReasonDenyAssignment
						res.DeniedBy = &e.denyRefs[di]
						return
					}
				}
			}
		}
	}

	// Role assignments: the chain's scope filter rules out most of the
	// principals' assignments before the exact test.
	reason := ReasonNoAssignment
scan:
	for _, sp := range res.spans {
		entries := e.byPrincipal.entries[sp.start:sp.end]
		if len(entries) <= longSpan {
			for i := range entries {
				pe := &entries[i]
				if filter.has(pe.bit) && slices.Contains(chain, pe.scope) &&
					e.consider(pe, req, res, &reason) && !req.AllGrants {
					break scan
				}
			}
			continue
		}
		// A long span is sorted by scope: look up each scope of the chain.
		for _, sc := range chain {
			i := e.byPrincipal.search(sp, sc)
			for ; i < len(entries) && entries[i].scope == sc; i++ {
				if e.consider(&entries[i], req, res, &reason) && !req.AllGrants {
					break scan
				}
			}
		}
	}
	if len(res.pending) > 0 {
		res.Allowed, res.Reason = true, ReasonGranted
		return
	}
	res.Reason = reason
}

// GrantedBy lists the role assignments (and permission blocks of their
// roles) that grant the checked action: the first Check found, or all of
// them when the request asked for AllGrants; none when it is not allowed.
// The slice is the Decision's and is valid until its next Check. Building
// it reads the assignments' records, which Check itself does not need to.
func (d *Decision) GrantedBy() []Grant {
	if !d.Allowed {
		return nil
	}
	if !d.grantsBuilt {
		d.grants = d.grants[:0]
		for _, g := range d.pending {
			a := &d.engine.assignments[g.assignment]
			role := &d.engine.roles[g.role]
			d.grants = append(d.grants, Grant{
				AssignmentID: a.id, PrincipalID: a.principalName,
				RoleDefinitionID: role.def.ID, RoleName: role.def.RoleName, Scope: a.scopeName, Block: int(g.block),
				EndDateTime: endOf(a),
			})
		}
		d.grantsBuilt = true
	}
	return d.grants
}

// subjectSpans is findPrincipals for a subject: its principals' ids, and
// the spans that may apply under filter.
func (e *Engine) subjectSpans(res *Decision, sub *subjectSlot, filter *scopeFilter) {
	f := filter.fold128()
	var touch uint64
	for i := range e.subjects.of(sub) {
		s := &e.subjects.of(sub)[i]
		res.pids = append(res.pids, s.pid)
		if s.start < s.end && s.scopes[0]&f[0]|s.scopes[1]&f[1] != 0 {
			sp := span{s.start, s.end, s.fence}
			res.spans = append(res.spans, sp)
			touch += e.touchEntries(sp)
		}
	}
	res.sink += touch
}

// touchEntries loads the cache lines of sp's entries that Check will read
// first: every line of a short span (four entries a line), not only the
// first; the first fences of a long one.
func (e *Engine) touchEntries(sp span) uint64 {
	if sp.end-sp.start > longSpan {
		return uint64(e.byPrincipal.fences[sp.fence])
	}
	var touch uint64
	for i := sp.start; i < sp.end; i += 4 {
		touch += uint64(e.byPrincipal.entries[i].bit)
	}
	return touch + uint64(e.byPrincipal.entries[sp.end-1].bit)
}

// longSpan is the length above which Check finds a principal's entries on
// the request's scope chain through the span's fences rather than by
// reading them all (four entries fill a cache line).
const longSpan = 16

// consider records the permission blocks of pe's role that grant the
// request (all of them with AllGrants, else the first), or raises *reason
// to why they do not. It reports whether one grants. An assignment whose
// window does not hold the request's time is passed over as if absent.
func (e *Engine) consider(pe *principalEntry, req *Request, res *Decision, reason *Reason) bool {
	if pe.win != 0 && !e.inForce(pe, req, res) {
		return false
	}
	if *reason == ReasonNoAssignment {
		*reason = ReasonNotInRole
	}
	granted := false
	role := &e.roles[pe.role]
	first := e.blockStart[pe.role]
	for b := range role.blocks {
		blk := &role.blocks[b]
		if res.blocks != nil {
			if !res.blocks.has(first + int32(b)) {
				continue
			}
		} else if !blk.permits(res.action, req.DataAction) {
			continue
		}
		if pe.conditional || blk.cond != nil || blk.condUnevaluable {
			r := e.conditionsHold(&e.assignments[pe.assignment], blk, req, res)
			if r != ReasonGranted {
				*reason = max(*reason, r)
				continue
			}
		}
		res.pending = append(res.pending, pendingGrant{pe.assignment, pe.role, int32(b)})
		granted = true
		if !req.AllGrants {
			break
		}
	}
	return granted
}

// inForce reports whether the window of pe's assignment holds the
// request's time, which it reads once per Check.
func (e *Engine) inForce(pe *principalEntry, req *Request, res *Decision) bool {
	if !res.nowSet {
		res.now, res.nowSet = requestTime(req.Now), true
	}
	w := int32(pe.win) - 1
	if pe.win == winFar {
		w = e.assignments[pe.assignment].win
	}
	return e.windows[w].Contains(res.now)
}

// conditionsHold evaluates the assignment's condition and the permission
// block's, returning ReasonGranted when both hold (or are absent).
func (e *Engine) conditionsHold(a *compiledAssignment, blk *compiledBlock, req *Request, res *Decision) Reason {
	if a.condUnevaluable || blk.condUnevaluable {
		return ReasonConditionNotEvaluable
	}
	if a.cond == nil && blk.cond == nil {
		return ReasonGranted
	}
	res.cond = ConditionRequest{Action: req.Action, SubOperation: req.SubOperation, DataAction: req.DataAction,
		Scope: req.Scope, PrincipalID: req.PrincipalID, Attributes: req.Attributes}
	for _, c := range [2]Condition{a.cond, blk.cond} {
		if c == nil {
			continue
		}
		ok, err := c.Evaluate(&res.cond)
		if err != nil {
			return ReasonConditionNotEvaluable
		}
		if !ok {
			return ReasonConditionFalse
		}
	}
	return ReasonGranted
}

// appliesTo reports whether the deny assignment covers one of the request's
// principals (the user and its groups): excluded principals win, then
// everyone, then the listed principals.
func (d *compiledDeny) appliesTo(pids []int32) bool {
	for _, p := range pids {
		if _, found := slices.BinarySearch(d.excludes, p); found {
			return false
		}
	}
	if d.everyone {
		return true
	}
	for _, p := range pids {
		if _, found := slices.BinarySearch(d.principals, p); found {
			return true
		}
	}
	return false
}

// probePrincipals and findPrincipals look up the request's principals (the
// user, then its groups), appending the interned ones to res.pids and the
// ranges of their assignments that may apply under filter to res.spans.
// They work in passes so that the cache misses of one pass (the ids'
// bytes, the table slots, the assignment entries) overlap rather than
// follow one another. probePrincipals parses the ids and touches their
// home slots.
func (e *Engine) probePrincipals(res *Decision, user string, groups []string) uint64 {
	res.probes = res.probes[:0]
	t := &e.ptable
	var touch uint64
	for _, g := range groups {
		if len(g) > 0 {
			touch += uint64(g[0]) + uint64(g[len(g)-1])
		}
	}
	for i := -1; i < len(groups); i++ {
		id := user
		if i >= 0 {
			id = groups[i]
		}
		k0, k1, ok := parseGUIDWords(id)
		var h uint64
		if ok && len(t.slots) > 0 {
			h = t.home(k0, k1)
		}
		res.probes = append(res.probes, probe{k0, k1, h, ok})
	}
	if len(t.slots) > 0 {
		for j := range res.probes {
			touch += uint64(t.slots[res.probes[j].home].p1)
		}
	}
	return touch
}

// findPrincipals finishes the lookups probePrincipals started.
func (e *Engine) findPrincipals(res *Decision, user string, groups []string, filter *scopeFilter) {
	res.pids = res.pids[:0]
	res.spans = res.spans[:0]
	t := &e.ptable
	var touch uint64
	for j := range res.probes {
		pr := &res.probes[j]
		if pr.guid {
			s := t.findFrom(pr.k0, pr.k1, pr.home)
			if s == nil {
				continue
			}
			res.pids = append(res.pids, s.p1-1)
			if s.start < s.end && s.scopes.meets(filter) {
				sp := span{s.start, s.end, s.fence}
				res.spans = append(res.spans, sp)
				touch += e.touchEntries(sp)
			}
			continue
		}
		id := user
		if j > 0 {
			id = groups[j-1]
		}
		res.id = lower(res.id, id)
		if p, found := e.principalIndex[string(res.id)]; found {
			res.pids = append(res.pids, p)
			res.spans = append(res.spans, e.byPrincipal.spanOf(p))
		}
	}
	res.sink += touch
}
