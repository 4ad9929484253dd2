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
// if its conditions hold. Assignments are additive; NotActions never deny.
//
// Check fills res (reset first) and does not allocate once res's buffers
// have grown; GrantedBy lists every granting assignment and block.
func (e *Engine) Check(req *Request, res *Decision) {
	res.Allowed, res.Reason, res.DeniedBy = false, ReasonNone, nil
	res.GrantedBy = res.GrantedBy[:0]
	res.pids = res.pids[:0]
	if req.PrincipalID == "" || req.Action == "" || len(req.Scope) == 0 || req.Scope[0] != '/' {
		res.Reason = ReasonInvalidRequest
		return
	}
	res.action = lower(res.action, req.Action)
	res.scope = lower(res.scope, req.Scope)
	chain, exact := e.resolveScope(res.scope)

	res.spans = res.spans[:0]
	e.addPrincipal(res, req.PrincipalID)
	groups := req.Groups
	if groups == nil && e.opts.Principals != nil {
		groups = e.opts.Principals.TransitiveMemberOf(req.PrincipalID)
	}
	for _, g := range groups {
		e.addPrincipal(res, g)
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

	// Role assignments: a one-word filter of the chain's scopes rules out
	// most of the principals' assignments before the exact test.
	var filter uint64
	for _, sc := range chain {
		filter |= scopeBit(sc)
	}
	reason := ReasonNoAssignment
	for _, sp := range res.spans {
		for _, pe := range e.byPrincipal.entries[sp.start:sp.end] {
			if scopeBit(pe.scope)&filter == 0 || !slices.Contains(chain, pe.scope) {
				continue
			}
			if reason == ReasonNoAssignment {
				reason = ReasonNotInRole
			}
			role := &e.roles[pe.role]
			for b := range role.blocks {
				blk := &role.blocks[b]
				if !blk.permits(res.action, req.DataAction) {
					continue
				}
				a := &e.assignments[pe.assignment]
				if pe.conditional || blk.cond != nil || blk.condUnevaluable {
					r := e.conditionsHold(a, blk, req, res)
					if r != ReasonGranted {
						if reason < r {
							reason = r
						}
						continue
					}
				}
				res.Allowed = true
				res.GrantedBy = append(res.GrantedBy, Grant{
					AssignmentID: a.id, PrincipalID: a.principalName,
					RoleDefinitionID: role.def.ID, RoleName: role.def.RoleName, Scope: a.scopeName, Block: b,
				})
			}
		}
	}
	if res.Allowed {
		res.Reason = ReasonGranted
		return
	}
	res.Reason = reason
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

// scopeBit is the scope's bit in a request's 64-bit chain filter.
func scopeBit(scope int32) uint64 {
	return 1 << (uint32(scope) * 0x9e3779b1 >> 26)
}

// addPrincipal appends an interned principal of the request, and the range
// of its assignments, to res; ids the engine does not know are skipped.
func (e *Engine) addPrincipal(res *Decision, id string) {
	s, isGUID, ok := e.ptable.lookup(id)
	if ok {
		res.pids = append(res.pids, s.p1-1)
		res.spans = append(res.spans, span{s.start, s.end})
		return
	}
	if isGUID {
		return
	}
	res.id = lower(res.id, id)
	if p, found := e.principalIndex[string(res.id)]; found {
		res.pids = append(res.pids, p)
		res.spans = append(res.spans, span{e.byPrincipal.off[p], e.byPrincipal.off[p+1]})
	}
}
