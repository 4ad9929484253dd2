package access

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/verityhq/verity/internal/directory"
)

// vectorFile is testdata/test-vectors/conditional-access-vectors.json.
type vectorFile struct {
	WhatIfAPI []struct {
		ID       string          `json:"id"`
		Request  json.RawMessage `json:"request"`
		Expected struct {
			AppliedPolicyIDsIncludes []string `json:"appliedPolicyIdsIncludes"`
			AllAppliedHave           struct {
				PolicyApplies   bool   `json:"policyApplies"`
				AnalysisReasons string `json:"analysisReasons"`
			} `json:"allAppliedHave"`
			ResponseTruncated bool `json:"responseTruncated"`
		} `json:"expected"`
	} `json:"whatIfApi"`
	LegacyVsAPI struct {
		Rows []struct {
			ID    string `json:"id"`
			Input struct {
				UserID        string `json:"userId"`
				ApplicationID string `json:"applicationId"`
				Location      string `json:"location"`
				SignInRisk    string `json:"signInRisk"`
			} `json:"input"`
			LegacyWhatIf string `json:"legacyWhatIf"`
			WhatIfAPI    string `json:"whatIfApi"`
		} `json:"rows"`
	} `json:"whatIfLegacyVsApiTable"`
	Semantics []struct {
		ID string `json:"id"`
	} `json:"semantics"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	var v vectorFile
	if err := json.Unmarshal(readFile(t, "test-vectors/conditional-access-vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// whatIfExamplePolicies parses the 7 policies Graph's evaluate examples
// answer with.
func whatIfExamplePolicies(t testing.TB) []*Policy {
	t.Helper()
	var docs struct {
		WhatIfExamplePolicies struct {
			Policies json.RawMessage `json:"policies"`
		} `json:"whatIfExamplePolicies"`
	}
	if err := json.Unmarshal(readFile(t, "conditional-access/graph-docs-examples/graph-docs-ca-policies.json"), &docs); err != nil {
		t.Fatal(err)
	}
	ps, _, err := ParsePolicies(docs.WhatIfExamplePolicies.Policies)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 7 {
		t.Fatalf("got %d example policies; want 7", len(ps))
	}
	return ps
}

// The examples' user, and the directory Verity needs to reproduce the
// documented answers: example 3 shows policy 4aa7d105 (includeRoles, the
// admin roles) applying to this user, so the user holds one of them.
const exampleUser = "15dc174b-f34c-4588-ac45-61d6e05dce93"

func exampleDirectory(t testing.TB) *StaticDirectory {
	t.Helper()
	d, err := ParseStaticDirectory([]byte(`{"users": [{"id": "` + exampleUser + `", "roles": ["` + directory.GlobalAdministratorRoleID + `"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestWhatIfAPIVectors(t *testing.T) {
	t.Parallel()
	vectors := loadVectors(t)
	if len(vectors.WhatIfAPI) != 4 {
		t.Fatalf("got %d What If API vectors; want 4", len(vectors.WhatIfAPI))
	}
	e, err := Compile(whatIfExamplePolicies(t), CompileOptions{AppGroups: appGroups(t)})
	if err != nil {
		t.Fatal(err)
	}
	dir := exampleDirectory(t)
	// Beyond the documented (truncated) lists, Verity's exact answers:
	// 4aa7d105 targets All resources and the user's admin role, so it
	// applies to every user sign-in of the examples; the service principal
	// sign-in gets only the two workload identity policies.
	exact := map[string][]string{
		"graph-evaluate-ex1": {"37d51c45-8c60-4f82-98e0-6e1451cecf7c", "4aa7d105-d92b-4c07-9834-0e810ddb89ac", "df9e6f15-2b60-4e78-b990-b2da33a10886"},
		"graph-evaluate-ex2": {"4aa7d105-d92b-4c07-9834-0e810ddb89ac", "e897c693-c0e6-4386-abc3-f46dee5940fb"},
		"graph-evaluate-ex3": {"11083471-5a50-43ad-90c0-23f1af0869e1", "37d51c45-8c60-4f82-98e0-6e1451cecf7c", "4aa7d105-d92b-4c07-9834-0e810ddb89ac"},
		"graph-evaluate-ex4": {"461478d2-5896-4761-84ba-4d241c396a29", "4f1d2ff3-50db-4299-bbdd-0a114c98e97e"},
	}
	for _, v := range vectors.WhatIfAPI {
		t.Run(v.ID, func(t *testing.T) {
			t.Parallel()
			req, err := ParseEvaluateRequest(v.Request)
			if err != nil {
				t.Fatal(err)
			}
			req.Resolve(dir)
			var res Result
			e.Evaluate(req, &res)
			body, err := json.Marshal(res.WhatIf())
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Value []struct {
					ID              string `json:"id"`
					PolicyApplies   bool   `json:"policyApplies"`
					AnalysisReasons string `json:"analysisReasons"`
				} `json:"value"`
			}
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
			var applied []string
			for _, p := range out.Value {
				// appliedPoliciesOnly is true in every example.
				if p.PolicyApplies != v.Expected.AllAppliedHave.PolicyApplies || p.AnalysisReasons != v.Expected.AllAppliedHave.AnalysisReasons {
					t.Errorf("policy %s: policyApplies %v, analysisReasons %q; want %v, %q", p.ID, p.PolicyApplies, p.AnalysisReasons,
						v.Expected.AllAppliedHave.PolicyApplies, v.Expected.AllAppliedHave.AnalysisReasons)
				}
				applied = append(applied, p.ID)
			}
			for _, id := range v.Expected.AppliedPolicyIDsIncludes {
				if !slices.Contains(applied, id) {
					t.Errorf("policy %s does not apply; the documented response lists it (applied: %v)", id, applied)
				}
			}
			slices.Sort(applied)
			if !slices.Equal(applied, exact[v.ID]) {
				t.Errorf("applied = %v; want %v", applied, exact[v.ID])
			}
		})
	}
}

// TestWhatIfNotAppliedReasons checks the reasons of the policies the
// examples do not list, with appliedPoliciesOnly off.
func TestWhatIfNotAppliedReasons(t *testing.T) {
	t.Parallel()
	e, err := Compile(whatIfExamplePolicies(t), CompileOptions{AppGroups: appGroups(t)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseEvaluateRequest(loadVectors(t).WhatIfAPI[3].Request) // the service principal
	if err != nil {
		t.Fatal(err)
	}
	req.AppliedPoliciesOnly = false
	var res Result
	e.Evaluate(req, &res)
	got := map[string]string{}
	for _, p := range res.WhatIf().Value {
		got[p.ID] = p.AnalysisReasons
	}
	want := map[string]string{
		"df9e6f15-2b60-4e78-b990-b2da33a10886": "workloadIdentities",
		"37d51c45-8c60-4f82-98e0-6e1451cecf7c": "workloadIdentities",
		"e897c693-c0e6-4386-abc3-f46dee5940fb": "workloadIdentities",
		"4aa7d105-d92b-4c07-9834-0e810ddb89ac": "workloadIdentities",
		"11083471-5a50-43ad-90c0-23f1af0869e1": "workloadIdentities",
		"461478d2-5896-4761-84ba-4d241c396a29": "notSet",
		"4f1d2ff3-50db-4299-bbdd-0a114c98e97e": "notSet",
	}
	if !maps.Equal(got, want) {
		t.Errorf("reasons = %v; want %v", got, want)
	}
	// The same service principal as a user sign-in target: the workload
	// identity policies fail on users.
	req = &Request{UserID: exampleUser, Applications: []string{"00000003-0000-0ff1-ce00-000000000000"}}
	e.Evaluate(req, &res)
	for i, p := range e.Policies() {
		if p.ID == "461478d2-5896-4761-84ba-4d241c396a29" && res.Policies[i].Reason != ReasonUsers {
			t.Errorf("workload identity policy on a user sign-in: reason %v; want users", res.Policies[i].Reason)
		}
	}
}

// TestWhatIfLegacyVsAPITable runs the What If API column of the
// documented table: the API does not apply a policy whose conditions need
// sign-in details the request leaves out. The legacy What If tool column
// ("Applies" in every row) is the portal tool's behaviour, which treats a
// missing detail as matching; Verity implements the API.
func TestWhatIfLegacyVsAPITable(t *testing.T) {
	t.Parallel()
	const us = "0f6a3f1e-6b6c-4a3e-9d7e-2c1b5a4d3e21"
	p := mkPolicy(t, `{"conditions": {"applications": {"includeApplications": ["Office365"]},
		"locations": {"includeLocations": ["`+us+`"]}, "signInRiskLevels": ["high"]}}`)
	e, err := Compile([]*Policy{p}, CompileOptions{AppGroups: appGroups(t), NamedLocations: []directory.NamedLocation{
		{ODataType: directory.ODataCountryNamedLocation, ID: us, DisplayName: "United States", CountriesAndRegions: []string{"US"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	rows := loadVectors(t).LegacyVsAPI.Rows
	if len(rows) != 4 {
		t.Fatalf("got %d rows; want 4", len(rows))
	}
	for _, row := range rows {
		t.Run(row.ID, func(t *testing.T) {
			t.Parallel()
			req := &Request{UserID: row.Input.UserID, Country: row.Input.Location}
			if row.Input.ApplicationID != "" {
				req.Applications = []string{row.Input.ApplicationID}
			}
			if row.Input.SignInRisk == "High" {
				req.SignInRisk = RiskHigh
			}
			var res Result
			e.Evaluate(req, &res)
			want := row.WhatIfAPI == "Applies"
			if got := res.Policies[0].Applies; got != want {
				t.Errorf("applies = %v (reason %v); the What If API column says %q", got, res.Policies[0].Reason, row.WhatIfAPI)
			}
		})
	}
}

// TestWhatIfShape checks the JSON of a What If answer: Graph's
// whatIfAnalysisResult per policy (the policy's own properties plus
// policyApplies and analysisReasons) and Verity's overall result.
func TestWhatIfShape(t *testing.T) {
	t.Parallel()
	e := compile(t, CompileOptions{},
		mkPolicy(t, `{"id": "7359d0e0-d8a9-4afa-8a93-e23e099d7be8", "displayName": "MFA", "sessionControls": {"signInFrequency": {"isEnabled": true, "type": "days", "value": 7}}}`),
		mkPolicy(t, `{"id": "c98e6c3d-f6ca-42ea-a927-773b6f12a0c2", "displayName": "EXO only", "state": "enabledForReportingButNotEnforced",
			"conditions": {"applications": {"includeApplications": ["`+exchange+`"]}}, "grantControls": {"builtInControls": ["block"]}}`))
	var res Result
	e.Evaluate(&Request{UserID: alice, Applications: []string{sharePoint}}, &res)
	b, err := json.Marshal(res.WhatIf())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"value": []any{
			map[string]any{"@odata.type": "#microsoft.graph.whatIfAnalysisResult", "id": "7359d0e0-d8a9-4afa-8a93-e23e099d7be8",
				"displayName": "MFA", "state": "enabled", "policyApplies": true, "analysisReasons": "notSet", "policyResult": "failure",
				"unmetControls":   []any{"mfa"},
				"conditions":      map[string]any{"applications": map[string]any{"includeApplications": []any{"All"}}, "users": map[string]any{"includeUsers": []any{"All"}}},
				"grantControls":   map[string]any{"operator": "OR", "builtInControls": []any{"mfa"}},
				"sessionControls": map[string]any{"signInFrequency": map[string]any{"isEnabled": true, "type": "days", "value": float64(7)}}},
			map[string]any{"@odata.type": "#microsoft.graph.whatIfAnalysisResult", "id": "c98e6c3d-f6ca-42ea-a927-773b6f12a0c2",
				"displayName": "EXO only", "state": "enabledForReportingButNotEnforced", "policyApplies": false, "analysisReasons": "application",
				"policyResult":    "reportOnlyNotApplied",
				"conditions":      map[string]any{"applications": map[string]any{"includeApplications": []any{exchange}}, "users": map[string]any{"includeUsers": []any{"All"}}},
				"grantControls":   map[string]any{"operator": "OR", "builtInControls": []any{"block"}},
				"sessionControls": nil},
		},
		"result": map[string]any{"outcome": "interrupt", "unmetControls": []any{"mfa"},
			"sessionControls": map[string]any{"signInFrequency": map[string]any{"isEnabled": true, "type": "days", "value": float64(7),
				"authenticationType": "primaryAndSecondaryAuthentication", "frequencyInterval": "timeBased"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("What If JSON:\n%s", b)
	}
}
