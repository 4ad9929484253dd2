package rbac

import "testing"

// attrs is a request's ABAC attributes, by "Source/name".
type attrs map[string][]string

func (a attrs) Attribute(source, name string) ([]string, bool) {
	v, ok := a[source+"/"+name]
	return v, ok
}

// TestConditionalAssignment: a Storage Blob Data Reader assignment limited
// to one container grants reads there and nowhere else, through the real
// condition language.
func TestConditionalAssignment(t *testing.T) {
	t.Parallel()
	const (
		user  = "a0000000-0000-4000-8000-000000000001"
		scope = "/subscriptions/00000000-0000-4000-8000-000000000abc/resourceGroups/data/providers/Microsoft.Storage/storageAccounts/acct"
		read  = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
		cond  = `((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'reports'))`
	)
	a := Assignment{ID: "b0000000-0000-4000-8000-000000000002", PrincipalID: user, RoleDefinitionID: "Storage Blob Data Reader",
		Scope: scope, Condition: cond, ConditionVersion: "2.0"}
	a.Normalize()
	for _, tt := range []struct {
		name      string
		compile   func(string, string) (Condition, error)
		container string
		want      bool
		reason    Reason
	}{
		{"the named container", CompileCondition, "reports", true, ReasonGranted},
		{"another container", CompileCondition, "payroll", false, ReasonConditionFalse},
		{"no compiler: a condition never widens access", nil, "reports", false, ReasonConditionNotEvaluable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Compile(nil, []Assignment{a}, nil, Options{CompileCondition: tt.compile})
			if err != nil {
				t.Fatal(err)
			}
			var d Decision
			e.Check(&Request{PrincipalID: user, Groups: []string{}, Action: read, DataAction: true, Scope: scope + "/blobServices/default/containers/" + tt.container,
				Attributes: attrs{"Resource/Microsoft.Storage/storageAccounts/blobServices/containers:name": {tt.container}}}, &d)
			if d.Allowed != tt.want || d.Reason != tt.reason {
				t.Fatalf("allowed %v reason %v; want %v %v", d.Allowed, d.Reason, tt.want, tt.reason)
			}
		})
	}
	if _, err := CompileCondition("@Resource[x] StringEquals", "2.0"); err == nil {
		t.Fatal("a broken condition compiled")
	}
	if _, err := CompileCondition(cond, "3.0"); err == nil {
		t.Fatal("an unknown condition version compiled")
	}
}
