package directory

import "slices"

// compileMembership resolves group members to nodes and precomputes, for
// every principal, its direct and transitive groups and, for every group,
// its transitive members.
//
// Group nesting is a graph with an edge from each member group to the
// group that holds it. Tarjan's algorithm splits it into strongly
// connected components (a cycle is one component) and emits them parents
// first, so the ancestors of each group are computed once, as the union of
// its parents and their already computed ancestors. Users and service
// principals are leaves: their groups are the union over their direct
// groups. Groups are numbered by their position in s.groups (id order),
// so sorted positions are sorted ids.
func (s *Snapshot) compileMembership() {
	nNodes, nGroups := len(s.nodes), len(s.groups)
	groupNode := make([]int32, nGroups)
	for i := range s.nodes {
		if s.nodes[i].kind == kindGroup {
			groupNode[s.nodes[i].index] = int32(i)
		}
	}

	parentOff, parentList := s.directParents(groupNode)
	parents := func(p int32) []int32 { return parentList[parentOff[p]:parentOff[p+1]] }

	anc := s.groupAncestors(groupNode, parents)

	// Transitive groups of every node, as group positions.
	var trans []int32
	transOff := make([]int32, nNodes+1)
	mark := make([]uint32, nGroups)
	epoch := uint32(0)
	for p := range int32(nNodes) {
		n := &s.nodes[p]
		if n.kind == kindGroup {
			trans = append(trans, anc.of(n.index)...)
		} else {
			epoch++
			start := len(trans)
			for _, d := range parents(p) {
				if mark[d] != epoch {
					mark[d] = epoch
					trans = append(trans, d)
				}
				for _, a := range anc.of(d) {
					if mark[a] != epoch {
						mark[a] = epoch
						trans = append(trans, a)
					}
				}
			}
			slices.Sort(trans[start:])
		}
		transOff[p+1] = int32(len(trans))
	}

	// Materialise the id lists in three shared arrays, one sub-slice per
	// node, each capped.
	memberOf := make([]string, len(parentList))
	for i, g := range parentList {
		memberOf[i] = s.groups[g].ID
	}
	transIDs := make([]string, len(trans))
	membersOff := make([]int32, nGroups+1)
	for i, g := range trans {
		transIDs[i] = s.groups[g].ID
		membersOff[g+1]++
	}
	for g := range nGroups {
		membersOff[g+1] += membersOff[g]
	}
	members := make([]string, len(trans))
	next := slices.Clone(membersOff[:nGroups])
	for p := range int32(nNodes) {
		id := s.nodeID(p)
		for _, g := range trans[transOff[p]:transOff[p+1]] {
			members[next[g]] = id
			next[g]++
		}
	}
	for p := range nNodes {
		n := &s.nodes[p]
		n.memberOf = capped(memberOf, parentOff[p], parentOff[p+1])
		n.transitive = capped(transIDs, transOff[p], transOff[p+1])
		n.transitivePos = trans[transOff[p]:transOff[p+1]:transOff[p+1]]
		if n.kind == kindGroup {
			n.transitiveMembers = capped(members, membersOff[n.index], membersOff[n.index+1])
		}
	}
	s.stats.Memberships = len(parentList)
	s.stats.TransitiveMemberships = len(trans)
	s.stats.CyclicGroups = anc.cyclic
}

// directParents resolves group members and returns the direct parents of
// every node, as group positions, in compressed rows: the parents of node p
// are list[off[p]:off[p+1]], ascending because groups are visited in
// order. Member ids that name nothing are counted and skipped.
func (s *Snapshot) directParents(groupNode []int32) (off, list []int32) {
	type edge struct{ child, parent int32 }
	var edges []edge
	off = make([]int32, len(s.nodes)+1)
	for g := range s.groups {
		for _, m := range s.groups[g].Members {
			p, ok := s.principals[m]
			if !ok {
				s.stats.DanglingMembers++
				continue
			}
			if p == groupNode[g] {
				continue // a group in itself adds nothing
			}
			edges = append(edges, edge{p, int32(g)})
			off[p+1]++
		}
	}
	for p := range len(s.nodes) {
		off[p+1] += off[p]
	}
	list = make([]int32, len(edges))
	next := slices.Clone(off[:len(s.nodes)])
	for _, e := range edges {
		list[next[e.child]] = e.parent
		next[e.child]++
	}
	return off, list
}

// capped is list[from:to] with its capacity cut to its length, or nil when
// empty.
func capped(list []string, from, to int32) []string {
	if from == to {
		return nil
	}
	return list[from:to:to]
}

func (s *Snapshot) nodeID(p int32) string {
	n := &s.nodes[p]
	switch n.kind {
	case kindUser:
		return s.users[n.index].ID
	case kindGroup:
		return s.groups[n.index].ID
	default:
		return s.sps[n.index].ID
	}
}

// ancestors holds, for every group position, the sorted positions of the
// groups it is transitively a member of (never itself).
type ancestors struct {
	list   []int32
	start  []int32
	end    []int32
	cyclic int // groups in a cycle
}

func (a *ancestors) of(g int32) []int32 { return a.list[a.start[g]:a.end[g]] }

// groupAncestors runs an iterative Tarjan over the group graph (edges from
// a group to its parents) and computes ancestors per component as the
// components complete, which is parents first.
func (s *Snapshot) groupAncestors(groupNode []int32, parents func(int32) []int32) *ancestors {
	nGroups := int32(len(groupNode))
	a := &ancestors{start: make([]int32, nGroups), end: make([]int32, nGroups)}
	index := make([]int32, nGroups)
	low := make([]int32, nGroups)
	comp := make([]int32, nGroups)
	onStack := make([]bool, nGroups)
	for g := range index {
		index[g], comp[g] = -1, -1
	}
	mark := make([]uint32, nGroups)
	epoch := uint32(0)
	var stack, scc, union []int32
	type frame struct {
		g    int32
		next int // position in parents(groupNode[g])
	}
	var call []frame
	counter, components := int32(0), int32(0)

	visit := func(g int32) {
		index[g], low[g] = counter, counter
		counter++
		stack = append(stack, g)
		onStack[g] = true
		call = append(call, frame{g: g})
	}
	// complete computes the ancestors of one component: the union of the
	// parents of its groups and their ancestors, less each group itself.
	complete := func(scc []int32) {
		for _, g := range scc {
			comp[g] = components
		}
		epoch++
		union = union[:0]
		add := func(x int32) {
			if mark[x] != epoch {
				mark[x] = epoch
				union = append(union, x)
			}
		}
		for _, g := range scc {
			for _, p := range parents(groupNode[g]) {
				add(p)
				if comp[p] != components {
					for _, x := range a.of(p) {
						add(x)
					}
				}
			}
		}
		slices.Sort(union)
		if len(scc) > 1 {
			a.cyclic += len(scc)
		}
		for _, g := range scc {
			a.start[g] = int32(len(a.list))
			for _, x := range union {
				if x != g {
					a.list = append(a.list, x)
				}
			}
			a.end[g] = int32(len(a.list))
		}
		components++
	}

	for root := range nGroups {
		if index[root] >= 0 {
			continue
		}
		visit(root)
		for len(call) > 0 {
			f := &call[len(call)-1]
			g := f.g
			ps := parents(groupNode[g])
			if f.next < len(ps) {
				p := ps[f.next]
				f.next++
				if index[p] < 0 {
					visit(p)
				} else if onStack[p] {
					low[g] = min(low[g], index[p])
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				up := call[len(call)-1].g
				low[up] = min(low[up], low[g])
			}
			if low[g] == index[g] {
				scc = scc[:0]
				for {
					x := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[x] = false
					scc = append(scc, x)
					if x == g {
						break
					}
				}
				complete(scc)
			}
		}
	}
	return a
}
