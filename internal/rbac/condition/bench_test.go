package condition

import "testing"

// BenchmarkEvaluate measures the hot path on realistic conditions with
// pre-parsed (typed) attribute values, which must not allocate, and with
// string values converted at evaluation.
func BenchmarkEvaluate(b *testing.B) {
	const read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
	twoClause := mustParse(b, `((!(ActionMatches{'`+read+`'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs' AND @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'audit/2026/*'))`)
	kvAdmin := mustParse(b, `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{00482a5a-887f-4fb3-b363-3b7fe8e74483, a4417e6f-fecd-4de8-b567-7b0420556985, 14b46e9e-c2b7-41b4-b07b-48a6ebf60603, e147488a-f6f5-4113-8e2d-b22465e65bf6, 12338af0-0e69-4776-bea7-57ae8d297424, 21090545-7ca7-4776-b22c-e363652d74d2, b86a8fe4-44ce-4948-aee5-eccb2c155cd7, 4633458b-17de-408a-b874-0445c86b69e6})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{00482a5a-887f-4fb3-b363-3b7fe8e74483, a4417e6f-fecd-4de8-b567-7b0420556985}))`)
	g, _ := ParseGUID("4633458b-17de-408a-b874-0445c86b69e6")
	blob := &Request{Action: read, Resource: Attributes{
		"Microsoft.Storage/storageAccounts/blobServices/containers:name":       Strings("logs"),
		"Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path": Strings("audit/2026/05/01/app.json"),
	}}
	for _, bc := range []struct {
		name string
		c    *Condition
		req  *Request
	}{
		{"two-clause-blob-path", twoClause, blob},
		{"two-clause-untargeted-action", twoClause, &Request{Action: "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"}},
		{"kv-admin-typed-guid", kvAdmin, &Request{Action: "Microsoft.Authorization/roleAssignments/write", Request: Attributes{"Microsoft.Authorization/roleAssignments:RoleDefinitionId": {GUIDValue(g)}}}},
		{"kv-admin-string-guid", kvAdmin, &Request{Action: "Microsoft.Authorization/roleAssignments/write", Request: Attributes{"Microsoft.Authorization/roleAssignments:RoleDefinitionId": Strings(g.String())}}},
		{"kv-admin-name-case-differs", kvAdmin, &Request{Action: "Microsoft.Authorization/roleAssignments/write", Request: Attributes{"microsoft.authorization/roleassignments:roledefinitionid": {GUIDValue(g)}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if ok, err := bc.c.Evaluate(bc.req); !ok || err != nil {
				b.Fatalf("Evaluate = %v, %v; want true", ok, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				bc.c.Evaluate(bc.req)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	const expr = `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{331c37c6-af14-46d9-b9f4-e1909e1b95a0, 45d50f46-0b78-4001-a660-4198cbe8cd05})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR (@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{331c37c6-af14-46d9-b9f4-e1909e1b95a0, 45d50f46-0b78-4001-a660-4198cbe8cd05}))`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(expr); err != nil {
			b.Fatal(err)
		}
	}
}

// TestEvaluateDoesNotAllocate pins the zero-allocation property of the hot
// path (the benchmark reports it; this makes a regression fail the build).
func TestEvaluateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := mustParse(t, `((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] StringEqualsIgnoreCase 'User'))`)
	g, _ := ParseGUID(roleReader)
	req := &Request{
		Action:   actAssign,
		Request:  Attributes{"Microsoft.Authorization/roleAssignments:roledefinitionid": {GUIDValue(g)}},
		Resource: Attributes{"Microsoft.Authorization/roleAssignments:PrincipalType": Strings("user")},
	}
	if ok, err := c.Evaluate(req); !ok || err != nil {
		t.Fatalf("Evaluate = %v, %v; want true", ok, err)
	}
	if n := testing.AllocsPerRun(100, func() { c.Evaluate(req) }); n != 0 {
		t.Errorf("Evaluate allocates %v times per run, want 0", n)
	}
}
