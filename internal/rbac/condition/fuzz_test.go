package condition

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that it reports errors as
// *SyntaxError inside the condition, and that every accepted condition
// survives the round trip through its canonical form with the same results
// on a few probe requests.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'blobs-example-container'))",
		"(!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{49fc33c1886f4b21a00e1d9993234734}",
		"@Resource[HasObotoken] boolequals true && (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {de754d53-652d-4c75-a67f-1e48d8b49c97})",
		"@Request[x] ForAllOfAllValues:NumericLessThan {25, 30}",
		"NOT Exists @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:P<$key_case_sensitive$>] || @Resource[t] StringLike 'a\\*?'",
		"@Environment[UtcNow] DateTimeGreaterThan '2026-05-01T13:00:00.000Z'",
		"@Resource[a] StringEquals @Principal[b] AND SubOperationMatches{'Blob.List'}",
		"@Resource[s] StringEquals 'it\\'s\\\\'",
		"((((ActionMatches{'a'}",
		"@Resource[x] == 'a'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %T, want *SyntaxError", s, err)
			}
			if se.Pos < 0 || se.Pos > len(s)+1 || !strings.HasPrefix(err.Error(), "condition: ") {
				t.Fatalf("Parse(%q): bad error %q", s, err)
			}
			return
		}
		canon := c.String()
		c2, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its canonical form %q: %v", s, canon, err)
		}
		if again := c2.String(); again != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, again)
		}
		for _, req := range probeRequests(c) {
			r1, e1 := c.Evaluate(req)
			r2, e2 := c2.Evaluate(req)
			if r1 != r2 || (e1 == nil) != (e2 == nil) {
				t.Fatalf("%q and its canonical form %q differ: %v/%v and %v/%v", s, canon, r1, e1, r2, e2)
			}
		}
	})
}

// probeRequests builds requests from the condition's own patterns and
// literals, so the round-trip check exercises both outcomes.
func probeRequests(c *Condition) []*Request {
	empty := &Request{}
	full := &Request{
		Resource: Attributes{}, Request: Attributes{}, Principal: Attributes{}, Environment: Attributes{},
	}
	var walk func(n *node)
	walk = func(n *node) {
		for _, k := range n.kids {
			walk(k)
		}
		switch n.kind {
		case nodeAction:
			full.Action = n.pattern
		case nodeSubOperation:
			full.SubOperation = n.pattern
		case nodeCompare, nodeExists, nodeNotExists:
			var vs []Value
			for _, v := range n.rhs {
				vs = append(vs, String(v.String()))
			}
			if vs == nil {
				vs = Strings("x")
			}
			full.source(n.attr.source)[n.attr.name] = vs
		}
	}
	walk(c.root)
	return []*Request{empty, full}
}
