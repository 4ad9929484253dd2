package condition

// AttributeRef names one attribute a condition reads.
type AttributeRef struct {
	Source Source
	Name   string // as the condition writes it, without <$key_case_sensitive$>
}

// Attributes lists the attributes the condition reads, each once, in the
// order they first appear, so a caller can fetch just those.
func (c *Condition) Attributes() []AttributeRef {
	if c == nil || c.root == nil {
		return nil
	}
	var out []AttributeRef
	seen := map[AttributeRef]bool{}
	add := func(a *attribute) {
		r := AttributeRef{Source: a.source, Name: a.name}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	var walk func(n *node)
	walk = func(n *node) {
		switch n.kind {
		case nodeAnd, nodeOr, nodeNot:
			for _, k := range n.kids {
				walk(k)
			}
		case nodeExists, nodeNotExists, nodeCompare:
			add(&n.attr)
			if n.rhsAttr != nil {
				add(n.rhsAttr)
			}
		}
	}
	walk(c.root)
	return out
}
