package pim

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPolicyFromGraphRules reads the documented default rule set of a
// directory role (Global Administrator) as Graph returns it.
func TestPolicyFromGraphRules(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/graph-docs-default-entra-role-pim-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Value []struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			Policy           struct {
				Rules json.RawMessage `json:"rules"`
			} `json:"policy"`
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	p, err := PolicyFromGraphRules(doc.Value[0].Policy.Rules)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicy()
	if p.ActivationMaxDuration != want.ActivationMaxDuration || !p.RequireMFA || !p.RequireJustification || p.RequireTicket ||
		p.RequireApproval || p.AuthenticationContext != "" || p.EligibilityMaxDuration.D() != 365*24*time.Hour ||
		p.AssignmentMaxDuration.D() != 180*24*time.Hour || p.EligibilityExpirationRequired || p.AssignmentExpirationRequired ||
		!p.AssignmentRequireJustification || p.ApprovalTimeout.D() != 24*time.Hour || !p.ApproverJustificationRequired {
		t.Fatalf("policy %+v", p)
	}
	// The same rules with approval, a ticket and an authentication
	// context switched on.
	var rules []map[string]any
	if err := json.Unmarshal(doc.Value[0].Policy.Rules, &rules); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		switch r["id"] {
		case "Approval_EndUser_Assignment":
			setting := r["setting"].(map[string]any)
			setting["isApprovalRequired"] = true
			stage := setting["approvalStages"].([]any)[0].(map[string]any)
			stage["approvalStageTimeOutInDays"] = 2
			stage["primaryApprovers"] = []any{
				map[string]any{"@odata.type": "#microsoft.graph.singleUser", "userId": "u-approver"},
				map[string]any{"@odata.type": "#microsoft.graph.groupMembers", "groupId": "g-secops"}}
		case "Enablement_EndUser_Assignment":
			r["enabledRules"] = []any{"MultiFactorAuthentication", "Justification", "Ticketing"}
		case "AuthenticationContext_EndUser_Assignment":
			r["isEnabled"], r["claimValue"] = true, "c2"
		}
	}
	edited, _ := json.Marshal(rules)
	p, err = PolicyFromGraphRules(edited)
	if err != nil {
		t.Fatal(err)
	}
	if !p.RequireApproval || strings.Join(p.Approvers, ",") != "u-approver,g-secops" || !p.RequireTicket ||
		p.AuthenticationContext != "c2" || p.ApprovalTimeout.D() != 48*time.Hour {
		t.Fatalf("policy with approval %+v", p)
	}
	if _, err := PolicyFromGraphRules(json.RawMessage(`[{"id": "Expiration_EndUser_Assignment", "maximumDuration": "P1Y"}]`)); err == nil ||
		!strings.Contains(err.Error(), "rules[0] (Expiration_EndUser_Assignment).maximumDuration") {
		t.Errorf("a year's duration: %v", err)
	}
	if _, err := PolicyFromGraphRules(json.RawMessage(`[{"id": "Magic_Rule"}]`)); err == nil || !strings.Contains(err.Error(), "Magic_Rule") {
		t.Errorf("an unknown rule: %v", err)
	}
	if _, err := PolicyFromGraphRules(json.RawMessage(`[{"id": "Expiration_EndUser_Assignment", "isExpirationRequired": true, "maximumDuration": "P2D"}]`)); err == nil ||
		!strings.Contains(err.Error(), "activationMaxDuration") {
		t.Errorf("an activation of two days: %v", err)
	}
}
