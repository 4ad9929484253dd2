package cedarbench

// Reference decides requests by following the documented check order
// literally, with no index beyond "assignments by principal": a deny
// assignment that applies blocks; otherwise some assignment of the
// principal or of one of its groups (transitively), at the scope or an
// ancestor, whose role has a permission block granting the action. It is
// slow and obvious, a third opinion for the agreement test.
type Reference struct {
	ds       *Dataset
	assignOf [][]int32
}

// NewReference indexes the assignments by principal.
func NewReference(ds *Dataset) *Reference {
	r := &Reference{ds: ds, assignOf: make([][]int32, len(ds.Principals))}
	for i, a := range ds.Assignments {
		r.assignOf[a.Principal] = append(r.assignOf[a.Principal], int32(i))
	}
	return r
}

// Allowed decides request i.
func (r *Reference) Allowed(i int) bool {
	ds := r.ds
	q := ds.Requests[i]
	who := ds.closure(q.Principal)
	in := func(ps []int32) bool {
		for _, p := range ps {
			for _, w := range who {
				if p == w {
					return true
				}
			}
		}
		return false
	}
	for _, d := range ds.Denies {
		if d.DoNotApplyToChildScopes && d.Scope != q.Scope || !ds.ancestorOrSelf(d.Scope, q.Scope) {
			continue
		}
		if !(d.Everyone || in(d.Principals)) || in(d.Exclude) {
			continue
		}
		if d.Permission.grants(q.Action, q.Data) {
			return false
		}
	}
	for _, p := range who {
		for _, ai := range r.assignOf[p] {
			a := ds.Assignments[ai]
			if !ds.ancestorOrSelf(a.Scope, q.Scope) {
				continue
			}
			for _, perm := range ds.Roles[a.Role].Permissions {
				if conditionGrants(perm.Condition) && perm.grants(q.Action, q.Data) {
					return true
				}
			}
		}
	}
	return false
}
