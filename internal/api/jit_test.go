package api_test

import (
	"net/http"
	"testing"
	"time"
)

// TestJITOverAPI: an administrator protects port 443 of /apps/payroll with
// Defender's policy body; alice, a JIT requester there, reads it and opens
// the port to her own address for an hour; bob, with no role, sees
// nothing and may neither open nor close it; alice closes it early. Bad
// bodies are refused with the property at fault; every change is in the
// audit log.
func TestJITOverAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, _ := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	for _, u := range []string{"alice@contoso.com", "bob@contoso.com"} {
		e.admin("POST", "/api/v1/users/"+u+"/password", map[string]any{"password": "correct horse battery staple 7"}).want(http.StatusNoContent)
	}
	aliceTok, _ := e.login("alice@contoso.com", "correct horse battery staple 7")
	bobTok, _ := e.login("bob@contoso.com", "correct horse battery staple 7")
	const resource = "/apps/payroll"
	policy := map[string]any{"kind": "Basic", "properties": map[string]any{"virtualMachines": []any{map[string]any{"id": resource,
		"ports": []any{map[string]any{"number": 443, "protocol": "*", "allowedSourceAddressPrefix": "*", "maxRequestAccessDuration": "PT3H"}}}}}}

	var got struct {
		ID, Name, Type string
		Properties     struct {
			ProvisioningState string
			Requests          []struct{ ID string }
		}
	}
	e.admin("PUT", "/api/v1/jit/policies/payroll", policy).want(http.StatusCreated).decode(&got)
	if got.Name != "payroll" || got.Type != "Microsoft.Security/locations/jitNetworkAccessPolicies" || got.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("created %+v", got)
	}
	e.admin("PUT", "/api/v1/jit/policies/payroll", policy).want(http.StatusOK)
	e.admin("PUT", "/api/v1/jit/policies/payroll", map[string]any{"kind": "Basic", "properties": map[string]any{"virtualMachines": []any{
		map[string]any{"id": resource, "ports": []any{map[string]any{"number": 443, "protocol": "*", "allowedSourceAddressPrefix": "*",
			"maxRequestAccessDuration": "PT3H", "priority": 100}}}}}}).
		problem(http.StatusBadRequest, "InvalidRequest", "properties.virtualMachines[0].ports[0].priority")
	e.admin("PUT", "/api/v1/jit/policies/payroll", map[string]any{"kind": "Basic", "properties": map[string]any{"virtualMachines": []any{
		map[string]any{"id": resource, "ports": []any{map[string]any{"number": 443, "protocol": "*", "allowedSourceAddressPrefix": "*",
			"maxRequestAccessDuration": "P2D"}}}}}}).
		problem(http.StatusBadRequest, "InvalidRequest", "properties.virtualMachines[0].ports[0].maxRequestAccessDuration")
	e.admin("PUT", "/api/v1/jit/policies/payroll", map[string]any{"name": "other", "properties": policy["properties"]}).
		problem(http.StatusBadRequest, "InvalidRequest", "name")
	e.call(aliceTok, "PUT", "/api/v1/jit/policies/payroll", policy).problem(http.StatusForbidden, "AuthorizationFailed", "")

	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice,
		"roleDefinitionId": "Verity JIT Network Access Requester", "scope": resource}).want(http.StatusCreated)
	var list struct{ Value []struct{ Name string } }
	for range 200 { // the new role reaches the snapshot
		if e.call(aliceTok, "GET", "/api/v1/jit/policies", nil).want(http.StatusOK).decode(&list); len(list.Value) == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(list.Value) != 1 || list.Value[0].Name != "payroll" {
		t.Fatalf("alice's policies %+v", list.Value)
	}
	e.call(bobTok, "GET", "/api/v1/jit/policies", nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 0 {
		t.Fatalf("bob sees %+v", list.Value)
	}
	e.call(bobTok, "GET", "/api/v1/jit/policies/payroll", nil).problem(http.StatusNotFound, "NotFound", "")

	initiate := map[string]any{"virtualMachines": []any{map[string]any{"id": resource, "ports": []any{map[string]any{"number": 443,
		"endTimeUtc": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}}}, "justification": "payroll incident"}
	e.call(bobTok, "POST", "/api/v1/jit/policies/payroll/initiate", initiate).problem(http.StatusForbidden, "AuthorizationFailed", "")
	e.call(aliceTok, "POST", "/api/v1/jit/policies/payroll/initiate", map[string]any{"virtualMachines": []any{map[string]any{"id": resource,
		"ports": []any{map[string]any{"number": 443, "endTimeUtc": time.Now().Add(4 * time.Hour).UTC().Format(time.RFC3339)}}}}}).
		problem(http.StatusBadRequest, "InvalidJitNetworkAccessRequest", "virtualMachines[0].ports[0].endTimeUtc")
	e.call(aliceTok, "POST", "/api/v1/jit/policies/payroll/initiate", map[string]any{"vms": []any{}}).problem(http.StatusBadRequest, "InvalidRequest", "vms")
	var req struct {
		ID, Requestor   string
		VirtualMachines []struct {
			Ports []struct {
				AllowedSourceAddressPrefix, Status, StatusReason string
			}
		}
	}
	e.call(aliceTok, "POST", "/api/v1/jit/policies/payroll/initiate", initiate).want(http.StatusAccepted).decode(&req)
	if p := req.VirtualMachines[0].Ports[0]; req.Requestor != "alice@contoso.com" || p.AllowedSourceAddressPrefix != "127.0.0.1" || p.Status != "Initiated" {
		t.Fatalf("request %+v", req)
	}
	var reqs struct{ Value []struct{ ID string } }
	e.call(aliceTok, "GET", "/api/v1/jit/requests?open=true", nil).want(http.StatusOK).decode(&reqs)
	if len(reqs.Value) != 1 || reqs.Value[0].ID != req.ID {
		t.Fatalf("alice's open requests %+v", reqs.Value)
	}
	e.call(bobTok, "GET", "/api/v1/jit/requests", nil).want(http.StatusOK).decode(&reqs)
	if len(reqs.Value) != 0 {
		t.Fatalf("bob sees %+v", reqs.Value)
	}
	e.call(bobTok, "GET", "/api/v1/jit/requests/"+req.ID, nil).problem(http.StatusNotFound, "NotFound", "")
	e.call(bobTok, "POST", "/api/v1/jit/requests/"+req.ID+"/revoke", nil).problem(http.StatusForbidden, "AuthorizationFailed", "")
	e.call(aliceTok, "POST", "/api/v1/jit/requests/"+req.ID+"/revoke", nil).want(http.StatusOK).decode(&req)
	if p := req.VirtualMachines[0].Ports[0]; p.Status != "Revoked" || p.StatusReason != "UserRequested" {
		t.Fatalf("revoked %+v", req)
	}
	e.call(aliceTok, "POST", "/api/v1/jit/requests/"+req.ID+"/revoke", nil).problem(http.StatusConflict, "RequestNotOpen", "")
	e.admin("GET", "/api/v1/jit/policies/payroll", nil).want(http.StatusOK).decode(&got)
	if len(got.Properties.Requests) != 1 || got.Properties.Requests[0].ID != req.ID {
		t.Fatalf("the policy's requests %+v", got.Properties.Requests)
	}
	e.call(aliceTok, "DELETE", "/api/v1/jit/policies/payroll", nil).problem(http.StatusForbidden, "AuthorizationFailed", "")
	e.admin("DELETE", "/api/v1/jit/policies/payroll", nil).want(http.StatusNoContent)
	e.admin("GET", "/api/v1/jit/policies/payroll", nil).problem(http.StatusNotFound, "NotFound", "")

	seen := map[string]int{}
	for _, ev := range e.audit() {
		if ev.Result == "success" {
			seen[ev.Action]++
		}
	}
	for action, n := range map[string]int{"jit.policy.write": 2, "jit.initiate": 1, "jit.revoke": 1, "jit.policy.delete": 1} {
		if seen[action] != n {
			t.Errorf("%s: %d records, want %d", action, seen[action], n)
		}
	}
}
