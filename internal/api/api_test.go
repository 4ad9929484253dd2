package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/store"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		e.call("", "GET", "/api/v1/users", nil).problem(http.StatusUnauthorized, "Unauthenticated", "")
		r := e.call("", "GET", "/api/v1/users", nil, "Authorization", "Basic YWRtaW46YWRtaW4=")
		r.problem(http.StatusUnauthorized, "Unauthenticated", "")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		e.call("vrt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "GET", "/api/v1/users", nil).problem(http.StatusUnauthorized, "Unauthenticated", "")
		e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "admin@verity.local", "password": "wrong-password-123"}).
			problem(http.StatusUnauthorized, "Unauthenticated", "")
		e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "nobody@verity.local", "password": "wrong-password-123"}).
			problem(http.StatusUnauthorized, "Unauthenticated", "")
		e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "admin@verity.local", "pasword": "x"}).
			problem(http.StatusBadRequest, "InvalidRequest", "pasword")

		me := e.admin("GET", "/api/v1/me", nil).want(http.StatusOK).json()
		if me["adminAccess"] != "Owner" || me["userPrincipalName"] != "admin@verity.local" {
			t.Fatalf("me = %v", me)
		}
		// Logout revokes the token everywhere.
		tok, _ := e.login("admin@verity.local", e.password)
		e.call(tok, "POST", "/api/v1/logout", nil).want(http.StatusNoContent)
		e.call(tok, "GET", "/api/v1/me", nil).problem(http.StatusUnauthorized, "Unauthenticated", "")
	})
}

func TestLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t), func(c *config.Config) { c.Auth.MaxFailedLogins = 3 })
	for range 3 {
		e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "admin@verity.local", "password": "not-the-password"}).want(http.StatusUnauthorized)
	}
	r := e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "admin@verity.local", "password": e.password})
	r.problem(http.StatusTooManyRequests, "TooManyRequests", "")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

func TestReaderCannotWrite(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		id := e.createUser("reader@contoso.com")
		e.admin("POST", "/api/v1/users/"+id+"/password", map[string]string{"password": "correct horse battery"}).want(http.StatusNoContent)
		// No role yet: signed in, but no access.
		tok, _ := e.login("reader@contoso.com", "correct horse battery")
		e.call(tok, "GET", "/api/v1/users", nil).problem(http.StatusForbidden, "Forbidden", "")
		e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{
			"principalId": id, "roleDefinitionId": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "scope": "/"}).want(http.StatusCreated)
		e.waitAccess(tok, "Reader")
		e.call(tok, "GET", "/api/v1/users", nil).want(http.StatusOK)
		msg := e.call(tok, "POST", "/api/v1/users", map[string]any{"userPrincipalName": "x@contoso.com", "displayName": "X"}).
			problem(http.StatusForbidden, "Forbidden", "")
		if !strings.Contains(msg, "Verity.Directory/users/write") || !strings.Contains(msg, "/directory/users") {
			t.Errorf("message %q does not say which permission is needed where", msg)
		}
		// Disabling the account cuts off its existing token at once.
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"accountEnabled": false}).want(http.StatusNoContent)
		e.call(tok, "GET", "/api/v1/users", nil).problem(http.StatusUnauthorized, "Unauthenticated", "")
		e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "reader@contoso.com", "password": "correct horse battery"}).
			problem(http.StatusForbidden, "Forbidden", "")
	})
}

// waitAccess waits until the snapshot gives tok's principal the access
// level ("" = none); decisions read the snapshot, which follows the store.
func (e *env) waitAccess(tok, level string) {
	e.t.Helper()
	for range 100 {
		r := e.call(tok, "GET", "/api/v1/me", nil)
		if level == "" && (r.status == http.StatusForbidden || r.status == http.StatusUnauthorized) {
			return
		}
		if r.status == http.StatusOK && r.json()["adminAccess"] == level {
			return
		}
		e.live.WaitFor(context.Background(), 0)
		sleep()
	}
	e.t.Fatalf("access never became %q", level)
}

func TestUsersCRUD(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		r := e.admin("POST", "/api/v1/users", map[string]any{
			"@odata.type": "#microsoft.graph.user", "userPrincipalName": "Alice@Contoso.com", "displayName": "Alice Adams",
			"userType": "member", "jobTitle": "Engineer", "businessPhones": []string{}}).want(http.StatusCreated)
		u := r.json()
		id := u["id"].(string)
		if r.header.Get("Location") != "/api/v1/users/"+id || u["userType"] != "Member" || u["createdDateTime"] == nil {
			t.Fatalf("created %v, Location %q", u, r.header.Get("Location"))
		}
		byUPN := e.admin("GET", "/api/v1/users/alice@contoso.com", nil).want(http.StatusOK).json()
		if byUPN["id"] != id {
			t.Fatalf("get by UPN = %v", byUPN)
		}
		etag := e.admin("GET", "/api/v1/users/"+id, nil).want(http.StatusOK).header.Get("ETag")
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"jobTitle": "Principal Engineer", "department": "Platform"}, "If-Match", etag).want(http.StatusNoContent)
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"jobTitle": "Intern"}, "If-Match", etag).problem(http.StatusPreconditionFailed, "PreconditionFailed", "")
		got := e.admin("GET", "/api/v1/users/"+id, nil).json()
		if got["jobTitle"] != "Principal Engineer" || got["department"] != "Platform" || got["displayName"] != "Alice Adams" {
			t.Fatalf("after patch %v", got)
		}
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"department": nil}).want(http.StatusNoContent)
		if got := e.admin("GET", "/api/v1/users/"+id, nil).json(); got["department"] != nil {
			t.Fatalf("null did not remove department: %v", got)
		}
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"id": "00000000-0000-0000-0000-000000000001"}).problem(http.StatusBadRequest, "InvalidRequest", "id")

		// Bad input: what and where.
		e.admin("POST", "/api/v1/users", map[string]any{"userPrincipalName": "alice@contoso.com", "displayName": "Dup"}).problem(http.StatusConflict, "Conflict", "")
		e.admin("POST", "/api/v1/users", map[string]any{"userPrincipalName": "b@contoso.com", "displayName": "B", "colour": "blue"}).problem(http.StatusBadRequest, "InvalidRequest", "colour")
		e.admin("POST", "/api/v1/users", map[string]any{"userPrincipalName": "b@contoso.com", "displayName": "B", "accountEnabled": "yes"}).problem(http.StatusBadRequest, "InvalidRequest", "accountEnabled")
		e.admin("POST", "/api/v1/users", map[string]any{"userPrincipalName": "not-an-upn", "displayName": "B"}).problem(http.StatusBadRequest, "InvalidRequest", "userPrincipalName")
		e.admin("POST", "/api/v1/users", `{"userPrincipalName": "b@contoso.com",`).problem(http.StatusBadRequest, "InvalidRequest", "")
		e.admin("POST", "/api/v1/users", `{"userPrincipalName":"b@contoso.com","displayName":"B"}`, "Content-Type", "text/plain").problem(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "")
		e.admin("GET", "/api/v1/users/not-a-guid-or-upn", nil).problem(http.StatusNotFound, "NotFound", "")
		e.admin("GET", "/api/v1/groups/not a guid", nil).problem(http.StatusNotFound, "NotFound", "id")
		e.admin("GET", "/api/v1/users/"+"00000000-0000-0000-0000-00000000abcd", nil).problem(http.StatusNotFound, "NotFound", "")

		// Paging.
		for i := range 5 {
			e.createUser(fmt.Sprintf("page%d@contoso.com", i))
		}
		var page struct {
			Value    []map[string]any
			NextLink string `json:"@odata.nextLink"`
		}
		e.admin("GET", "/api/v1/users?$top=3", nil).want(http.StatusOK).decode(&page)
		seen := len(page.Value)
		for page.NextLink != "" {
			next := page.NextLink
			page.NextLink = ""
			page.Value = nil
			e.admin("GET", next, nil).want(http.StatusOK).decode(&page)
			seen += len(page.Value)
		}
		if seen != 7 { // admin, alice, 5 page users
			t.Fatalf("paged through %d users; want 7", seen)
		}
		e.admin("GET", "/api/v1/users?$top=0", nil).problem(http.StatusBadRequest, "InvalidRequest", "$top")

		// identities link the user to an account at an external provider.
		fed := map[string]any{"signInType": "federated", "issuer": "https://login.fabrikam.com", "issuerAssignedId": "8f2c0b7e"}
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"identities": []any{fed}}).want(http.StatusNoContent)
		if got := e.admin("GET", "/api/v1/users/"+id, nil).json(); fmt.Sprint(got["identities"]) != fmt.Sprint([]any{fed}) {
			t.Fatalf("identities read back as %v", got["identities"])
		}
		e.admin("PATCH", "/api/v1/users/"+id, map[string]any{"identities": []any{map[string]any{"signInType": "federated", "issuer": "https://login.fabrikam.com"}}}).
			problem(http.StatusBadRequest, "InvalidRequest", "identities[0]")

		// Deleting a user deletes what sign-in keeps about it.
		ctx := context.Background()
		for _, kind := range []string{"session", "consent", "authMethods", "federatedIdentity"} {
			if _, err := st.CreateRecord(ctx, store.Record{Kind: kind, ID: kind + "-" + id, Subject: id, Body: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
		}
		e.admin("DELETE", "/api/v1/users/"+id, nil).want(http.StatusNoContent)
		e.admin("GET", "/api/v1/users/"+id, nil).want(http.StatusNotFound)
		for _, kind := range []string{"session", "consent", "authMethods", "federatedIdentity"} {
			if recs, err := st.ListRecords(ctx, kind, id, 0); err != nil || len(recs) != 0 {
				t.Errorf("%s records of the deleted user: %d %v", kind, len(recs), err)
			}
		}
		e.admin("DELETE", "/api/v1/users/"+e.adminID, nil).problem(http.StatusConflict, "Conflict", "")
	})
}

func TestNestedGroups(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := e.createUser("alice@contoso.com")
		top, mid, leaf := e.createGroup("All Staff"), e.createGroup("Engineering"), e.createGroup("Platform")
		e.addMember(top, mid)
		e.addMember(mid, leaf)
		e.addMember(leaf, alice)

		names := func(path string) []string {
			var out struct{ Value []map[string]any }
			e.admin("GET", path, nil).want(http.StatusOK).decode(&out)
			var n []string
			for _, v := range out.Value {
				n = append(n, fmt.Sprint(v["displayName"]))
			}
			slices.Sort(n)
			return n
		}
		if got := names("/api/v1/users/alice@contoso.com/transitiveMemberOf"); !slices.Equal(got, []string{"All Staff", "Engineering", "Platform"}) {
			t.Fatalf("transitiveMemberOf = %v", got)
		}
		if got := names("/api/v1/users/" + alice + "/memberOf"); !slices.Equal(got, []string{"Platform"}) {
			t.Fatalf("memberOf = %v", got)
		}
		if got := names("/api/v1/groups/" + top + "/transitiveMembers"); !slices.Equal(got, []string{"Engineering", "Platform", "alice@contoso.com"}) {
			t.Fatalf("transitiveMembers = %v", got)
		}
		// Members are not part of the Graph group shape.
		if g := e.admin("GET", "/api/v1/groups/"+mid, nil).json(); g["members"] != nil {
			t.Fatalf("group exposes members: %v", g)
		}
		// A cycle is refused, and so is a duplicate or a dangling member.
		msg := e.admin("POST", "/api/v1/groups/"+leaf+"/members/$ref", map[string]string{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + top}).
			problem(http.StatusBadRequest, "InvalidRequest", "@odata.id")
		if !strings.Contains(msg, "cycle") {
			t.Errorf("cycle message %q", msg)
		}
		e.admin("POST", "/api/v1/groups/"+leaf+"/members/$ref", map[string]string{"@odata.id": "directoryObjects/" + alice}).problem(http.StatusConflict, "Conflict", "")
		e.admin("POST", "/api/v1/groups/"+leaf+"/members/$ref", map[string]string{"@odata.id": "directoryObjects/0b9e2a4c-0000-4000-8000-000000000000"}).problem(http.StatusBadRequest, "InvalidRequest", "@odata.id")
		e.admin("POST", "/api/v1/groups/"+leaf+"/members/$ref", map[string]string{"@odata.id": "somewhere"}).problem(http.StatusBadRequest, "InvalidRequest", "@odata.id")
		e.admin("POST", "/api/v1/groups", map[string]any{"displayName": "engineering"}).problem(http.StatusConflict, "Conflict", "")

		// Removing a member and deleting a group update the computed views.
		e.admin("DELETE", "/api/v1/groups/"+mid+"/members/"+leaf+"/$ref", nil).want(http.StatusNoContent)
		if got := names("/api/v1/users/" + alice + "/transitiveMemberOf"); !slices.Equal(got, []string{"Platform"}) {
			t.Fatalf("after removal transitiveMemberOf = %v", got)
		}
		e.admin("DELETE", "/api/v1/users/"+alice, nil).want(http.StatusNoContent)
		if got := names("/api/v1/groups/" + leaf + "/members"); len(got) != 0 {
			t.Fatalf("deleted user still a member: %v", got)
		}
	})
}

func TestNamedLocationsImportGraphExports(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	files := []string{"ALLOWED COUNTRIES.json", "ALLOWED COUNTRIES - SERVICE ACCOUNTS.json", "All Compliant Network locations.json"}
	for _, f := range files {
		b, err := os.ReadFile("../directory/testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		e.admin("POST", "/api/v1/identity/conditionalAccess/namedLocations", b).want(http.StatusCreated)
	}
	got := e.admin("GET", "/api/v1/identity/conditionalAccess/namedLocations/185c993e-10a9-44fa-98d1-230c8f72f497", nil).want(http.StatusOK).json()
	if got["@odata.type"] != "#microsoft.graph.countryNamedLocation" || fmt.Sprint(got["countriesAndRegions"]) != "[BE LU NL]" {
		t.Fatalf("named location = %v", got)
	}
	e.admin("POST", "/api/v1/identity/conditionalAccess/namedLocations", map[string]any{
		"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": true,
		"ipRanges": []map[string]any{{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "10.0.0.0/8"}, {"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "300.1.1.0/24"}}}).
		problem(http.StatusBadRequest, "InvalidRequest", "ipRanges[1].cidrAddress")
}

func TestDirectoryRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	var defs struct{ Value []map[string]any }
	e.admin("GET", "/api/v1/roleManagement/directory/roleDefinitions", nil).want(http.StatusOK).decode(&defs)
	if len(defs.Value) < 100 {
		t.Fatalf("%d built-in directory roles", len(defs.Value))
	}
	const globalAdmin = "62e90394-69f5-4237-9190-012177145e10"
	e.admin("GET", "/api/v1/roleManagement/directory/roleDefinitions/"+globalAdmin, nil).want(http.StatusOK)
	u := e.createUser("ga@contoso.com")
	plain := e.createGroup("Plain")
	e.admin("POST", "/api/v1/roleManagement/directory/roleAssignments", map[string]any{"principalId": u, "roleDefinitionId": globalAdmin, "directoryScopeId": "/"}).want(http.StatusCreated)
	e.admin("POST", "/api/v1/roleManagement/directory/roleAssignments", map[string]any{"principalId": plain, "roleDefinitionId": globalAdmin}).problem(http.StatusBadRequest, "InvalidRequest", "principalId")
	e.admin("POST", "/api/v1/roleManagement/directory/roleAssignments", map[string]any{"principalId": u, "roleDefinitionId": "00000000-0000-0000-0000-000000000000"}).problem(http.StatusBadRequest, "InvalidRequest", "roleDefinitionId")
	// Entra: role-assignable groups hold users and service principals, never groups.
	assignable := e.createGroup("Tier 0", map[string]any{"isAssignableToRole": true})
	e.admin("POST", "/api/v1/groups/"+assignable+"/members/$ref", map[string]string{"@odata.id": "directoryObjects/" + plain}).problem(http.StatusBadRequest, "InvalidRequest", "@odata.id")
	e.addMember(assignable, u)
}

func TestLastOwnerIsProtected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	var list struct{ Value []map[string]any }
	e.admin("GET", "/api/v1/authorization/roleAssignments", nil).want(http.StatusOK).decode(&list)
	if len(list.Value) != 1 || list.Value[0]["roleDefinitionName"] != "Owner" {
		t.Fatalf("assignments = %v", list.Value)
	}
	id := list.Value[0]["id"].(string)
	e.admin("DELETE", "/api/v1/authorization/roleAssignments/"+id, nil).problem(http.StatusConflict, "Conflict", "")
	e.admin("PATCH", "/api/v1/authorization/roleAssignments/"+id, map[string]any{"roleDefinitionId": "Reader"}).problem(http.StatusConflict, "Conflict", "")
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t), func(c *config.Config) { c.HTTP.MaxBodyBytes = 4096 })
	big := `{"userPrincipalName":"a@b.co","displayName":"` + strings.Repeat("x", 5000) + `"}`
	e.admin("POST", "/api/v1/users", big).problem(http.StatusRequestEntityTooLarge, "PayloadTooLarge", "")
	r := e.admin("PUT", "/api/v1/users", `{}`)
	r.problem(http.StatusMethodNotAllowed, "MethodNotAllowed", "")
	if r.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
	e.admin("GET", "/api/v1/nothing-here", nil).problem(http.StatusNotFound, "NotFound", "")
	r = e.call("", "GET", "/healthz", nil, "X-Request-Id", "trace-123")
	if r.want(http.StatusOK).header.Get("X-Request-Id") != "trace-123" {
		t.Error("request id not echoed")
	}
	r = e.call("", "GET", "/healthz", nil, "X-Request-Id", "bad id\twith tab")
	if id := r.header.Get("X-Request-Id"); id == "" || strings.Contains(id, "bad") {
		t.Errorf("unsafe request id echoed: %q", id)
	}
	if ready := e.call("", "GET", "/readyz", nil).want(http.StatusOK).json(); ready["status"] != "ready" {
		t.Errorf("readyz = %v", ready)
	}
	m := e.call("", "GET", "/metrics", nil).want(http.StatusOK)
	if !strings.Contains(string(m.body), "verity_api_requests_total") {
		t.Error("metrics lack verity_api_requests_total")
	}
}

func TestEveryCallIsAudited(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		id := e.createUser("audited@contoso.com")
		e.admin("POST", "/api/v1/users/"+id+"/password", map[string]string{"password": "a very secret passphrase"}).want(http.StatusNoContent)
		e.admin("GET", "/api/v1/users/"+id, nil).want(http.StatusOK)
		e.call("", "GET", "/api/v1/users", nil).want(http.StatusUnauthorized)
		e.admin("POST", "/api/v1/users", map[string]any{"bad": 1}).want(http.StatusBadRequest)

		evs := e.audit()
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Action+":"+ev.Result)
		}
		// The sign-in itself is in the sign-in log (action signIn) before the
		// API call that asked for it.
		want := []string{"signIn:success", "auth.login:success", "users.create:success", "users.setPassword:success", "users.get:success", "users.list:denied", "users.create:failure"}
		if !slices.Equal(got, want) {
			t.Fatalf("audit = %v; want %v", got, want)
		}
		// A change is recorded in its own transaction, before the response
		// (status 0), with what it wrote; a refusal after the fact with its
		// status.
		create := evs[2]
		if create.Actor != e.adminID || create.Target != "/api/v1/users" || create.Status != 0 || create.RequestID == "" {
			t.Fatalf("create event = %+v", create)
		}
		if failed := evs[6]; failed.Status != http.StatusBadRequest {
			t.Fatalf("failed create event = %+v", failed)
		}
		var details struct {
			Revision int64 `json:"revision"`
			Changes  []struct{ Kind, ID, Op string }
		}
		if err := json.Unmarshal(create.Details, &details); err != nil || details.Revision == 0 || len(details.Changes) == 0 ||
			details.Changes[0].ID != id || details.Changes[0].Op != "put" {
			t.Fatalf("create details = %s", create.Details)
		}
		// Secrets never reach the audit table or the log.
		for _, ev := range evs {
			if strings.Contains(string(ev.Details), "secret passphrase") || strings.Contains(string(ev.Details), e.password) {
				t.Fatalf("audit event carries a secret: %s", ev.Details)
			}
		}
		logs := e.logs.String()
		for _, secret := range []string{e.password, e.token, "a very secret passphrase", "vrt_"} {
			if strings.Contains(logs, secret) {
				t.Fatalf("log output contains a secret (%q)", secret[:4])
			}
		}
		if !strings.Contains(logs, `"msg":"http request"`) || !strings.Contains(logs, `"requestId"`) {
			t.Fatalf("no structured access log: %s", logs)
		}
	})
}

func TestReviewedEdgeCases(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t), func(c *config.Config) { c.Auth.MaxFailedLogins = 2 })
	alice := e.createUser("alice@contoso.com")

	// Users, groups and service principals share one id space.
	e.admin("POST", "/api/v1/groups", map[string]any{"id": alice, "displayName": "Clash"}).problem(http.StatusConflict, "Conflict", "id")

	// Graph's members@odata.bind works on create; other bindings are refused, not dropped.
	var g struct{ ID string }
	e.admin("POST", "/api/v1/groups", map[string]any{"displayName": "Bound",
		"members@odata.bind": []string{"https://graph.microsoft.com/v1.0/directoryObjects/" + alice}}).want(http.StatusCreated).decode(&g)
	var members struct{ Value []map[string]any }
	e.admin("GET", "/api/v1/groups/"+g.ID+"/members", nil).want(http.StatusOK).decode(&members)
	if len(members.Value) != 1 || members.Value[0]["id"] != alice || members.Value[0]["@odata.type"] != "#microsoft.graph.user" {
		t.Fatalf("members = %v", members.Value)
	}
	e.admin("POST", "/api/v1/groups", map[string]any{"displayName": "Owned",
		"owners@odata.bind": []string{"https://graph.microsoft.com/v1.0/users/" + alice}}).problem(http.StatusBadRequest, "InvalidRequest", "owners@odata.bind")

	// Graph assigns an application's appId.
	app := e.admin("POST", "/api/v1/applications", map[string]any{"displayName": "Payroll"}).want(http.StatusCreated).json()
	if s, _ := app["appId"].(string); len(s) != 36 {
		t.Fatalf("application without appId: %v", app)
	}

	// Role assignments must name their principal's real type; canonical GUIDs only.
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "principalType": "Group", "roleDefinitionId": "Reader"}).
		problem(http.StatusBadRequest, "InvalidRequest", "principalType")
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": "{" + alice + "}", "roleDefinitionId": "Reader"}).
		problem(http.StatusBadRequest, "InvalidRequest", "principalId")
	ra := e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "roleDefinitionId": "Reader"}).want(http.StatusCreated).json()
	if ra["principalType"] != "User" || ra["roleDefinitionName"] != "Reader" {
		t.Fatalf("role assignment = %v", ra)
	}

	// Disabling the only Owner would lock everyone out.
	e.admin("PATCH", "/api/v1/users/"+e.adminID, map[string]any{"accountEnabled": false}).problem(http.StatusConflict, "Conflict", "")
	// Owner through a group counts; emptying that group is then refused.
	owners := e.createGroup("Owners")
	e.addMember(owners, alice)
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": owners, "roleDefinitionId": "Owner"}).want(http.StatusCreated)
	e.admin("POST", "/api/v1/users/"+alice+"/password", map[string]string{"password": "alice's long passphrase"}).want(http.StatusNoContent)
	aliceTok, _ := e.login("alice@contoso.com", "alice's long passphrase")
	e.admin("PATCH", "/api/v1/users/"+e.adminID, map[string]any{"accountEnabled": false}).want(http.StatusNoContent)
	e.waitAccess(aliceTok, "Owner")
	e.call(aliceTok, "DELETE", "/api/v1/groups/"+owners+"/members/"+alice+"/$ref", nil).problem(http.StatusConflict, "Conflict", "")
	e.token = aliceTok

	// Modified time is the server's, not the client's.
	loc := e.admin("POST", "/api/v1/identity/conditionalAccess/namedLocations", map[string]any{"@odata.type": "#microsoft.graph.countryNamedLocation",
		"displayName": "Home", "countriesAndRegions": []string{"NL"}}).want(http.StatusCreated).json()
	locPath := "/api/v1/identity/conditionalAccess/namedLocations/" + loc["id"].(string)
	e.admin("PATCH", locPath, map[string]any{"modifiedDateTime": "2001-01-01T00:00:00Z"}).problem(http.StatusBadRequest, "InvalidRequest", "modifiedDateTime")
	e.admin("PATCH", locPath, map[string]any{"@odata.type": "#microsoft.graph.countryNamedLocation", "countriesAndRegions": []string{"NL", "BE"}}).want(http.StatusNoContent)
	if after := e.admin("GET", locPath, nil).json(); after["modifiedDateTime"] == loc["modifiedDateTime"] || after["modifiedDateTime"] == nil {
		t.Fatalf("modifiedDateTime not advanced: %v -> %v", loc["modifiedDateTime"], after["modifiedDateTime"])
	}
}

func TestLockoutRetryAfter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t), func(c *config.Config) { c.Auth.MaxFailedLogins = 1; c.Auth.LockoutDuration = config.Duration(90 * 1e9) })
	e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "admin@verity.local", "password": "not-the-password"}).want(http.StatusUnauthorized)
	r := e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "admin@verity.local", "password": "not-the-password"})
	r.want(http.StatusTooManyRequests)
	if ra := r.header.Get("Retry-After"); ra == "5" || ra == "" {
		t.Fatalf("Retry-After = %q; want the lock's remaining seconds", ra)
	}
}

func TestConditionalAccessPolicies(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		loc := e.admin("POST", "/api/v1/identity/conditionalAccess/namedLocations", map[string]any{
			"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Office", "isTrusted": true,
			"ipRanges": []map[string]any{{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}}}).want(http.StatusCreated).json()
		locID := loc["id"].(string)
		policy := func(name string, locations ...string) map[string]any {
			return map[string]any{
				"displayName": name, "state": "enabled",
				"conditions": map[string]any{
					"users":          map[string]any{"includeUsers": []string{"All"}},
					"applications":   map[string]any{"includeApplications": []string{"All"}},
					"clientAppTypes": []string{"all"},
					"locations":      map[string]any{"includeLocations": []string{"All"}, "excludeLocations": locations},
				},
				"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"mfa"}},
			}
		}
		created := e.admin("POST", "/api/v1/identity/conditionalAccess/policies", policy("Require MFA outside the office", "AllTrusted", locID)).want(http.StatusCreated).json()
		id := created["id"].(string)
		if created["createdDateTime"] == nil || created["state"] != "enabled" {
			t.Fatalf("created %v", created)
		}
		got := e.admin("GET", "/api/v1/identity/conditionalAccess/policies/"+id, nil).want(http.StatusOK).json()
		if got["displayName"] != "Require MFA outside the office" {
			t.Fatalf("got %v", got)
		}
		// References and validation are checked with their paths.
		e.admin("POST", "/api/v1/identity/conditionalAccess/policies", policy("Dangling", "0b9e2a4c-0000-4000-8000-000000000000")).
			problem(http.StatusBadRequest, "InvalidRequest", "conditions.locations.excludeLocations[0]")
		bad := policy("Bad state")
		bad["state"] = "on"
		e.admin("POST", "/api/v1/identity/conditionalAccess/policies", bad).problem(http.StatusBadRequest, "InvalidRequest", "state")
		// A location a policy uses cannot be deleted; after the policy changes it can.
		e.admin("DELETE", "/api/v1/identity/conditionalAccess/namedLocations/"+locID, nil).problem(http.StatusConflict, "Conflict", "")
		e.admin("PATCH", "/api/v1/identity/conditionalAccess/policies/"+id, map[string]any{
			"conditions": policy("x", "AllTrusted")["conditions"]}).want(http.StatusNoContent)
		e.admin("DELETE", "/api/v1/identity/conditionalAccess/namedLocations/"+locID, nil).want(http.StatusNoContent)
		// The snapshot compiles the policy set.
		deadline := time.Now().Add(5 * time.Second)
		for {
			snap := e.live.Current()
			if eng, err := snap.Access(); err == nil && eng != nil && len(eng.Policies()) == 1 {
				break
			} else if time.Now().After(deadline) {
				t.Fatalf("snapshot engine: %v, %v", eng, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func TestConditionalAccessWhatIf(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, bob := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	staff := e.createGroup("Staff")
	engineers := e.createGroup("Engineers")
	e.addMember(staff, engineers) // alice is in Staff through Engineers
	e.addMember(engineers, alice)
	const exchange = "00000002-0000-0ff1-ce00-000000000000"
	e.admin("POST", "/api/v1/identity/conditionalAccess/policies", map[string]any{
		"displayName": "Staff need MFA for Exchange", "state": "enabled",
		"conditions": map[string]any{
			"users":          map[string]any{"includeGroups": []string{staff}},
			"applications":   map[string]any{"includeApplications": []string{exchange}},
			"clientAppTypes": []string{"all"},
		},
		"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"mfa"}},
	}).want(http.StatusCreated)
	e.admin("POST", "/api/v1/identity/conditionalAccess/policies", map[string]any{
		"displayName": "Block legacy authentication", "state": "enabledForReportingButNotEnforced",
		"conditions": map[string]any{
			"users":          map[string]any{"includeUsers": []string{"All"}},
			"applications":   map[string]any{"includeApplications": []string{"All"}},
			"clientAppTypes": []string{"exchangeActiveSync", "other"},
		},
		"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"block"}},
	}).want(http.StatusCreated)

	whatIf := func(user string, extra map[string]any) map[string]any {
		body := map[string]any{
			"signInIdentity":   map[string]any{"@odata.type": "#microsoft.graph.userSignIn", "userId": user},
			"signInContext":    map[string]any{"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": []string{exchange}},
			"signInConditions": map[string]any{"clientAppType": "browser", "devicePlatform": "windows", "ipAddress": "203.0.113.7", "country": "NL"},
		}
		for k, v := range extra {
			body[k] = v
		}
		var out map[string]any
		e.admin("POST", "/api/v1/identity/conditionalAccess/evaluate", body).want(http.StatusOK).decode(&out)
		return out
	}
	result := func(out map[string]any) (string, []any) {
		r := out["result"].(map[string]any)
		unmet, _ := r["unmetControls"].([]any)
		return r["outcome"].(string), unmet
	}
	applies := func(out map[string]any, name string) bool {
		for _, p := range out["value"].([]any) {
			p := p.(map[string]any)
			if p["displayName"] == name {
				return p["policyApplies"] == true
			}
		}
		t.Fatalf("policy %q not in %v", name, out["value"])
		return false
	}

	out := whatIf(alice, nil)
	if outcome, unmet := result(out); outcome == "notApplied" || outcome == "block" || fmt.Sprint(unmet) != "[mfa]" {
		t.Fatalf("alice without MFA: %s %v", outcome, unmet)
	}
	if !applies(out, "Staff need MFA for Exchange") || applies(out, "Block legacy authentication") {
		t.Fatalf("applying policies: %v", out["value"])
	}
	if outcome, unmet := result(whatIf(alice, map[string]any{"satisfiedControls": []string{"mfa"}})); outcome != "grant" || len(unmet) != 0 {
		t.Fatalf("alice with MFA: %s %v", outcome, unmet)
	}
	if outcome, _ := result(whatIf(bob, nil)); outcome != "notApplied" {
		t.Fatalf("bob (not staff): %s", outcome)
	}
	// The report-only block applies to legacy clients but is never enforced.
	legacy := whatIf(bob, map[string]any{"signInConditions": map[string]any{"clientAppType": "exchangeActiveSync", "devicePlatform": "windows"}})
	if outcome, _ := result(legacy); outcome == "block" || !applies(legacy, "Block legacy authentication") {
		t.Fatalf("report-only block enforced: %v", legacy["result"])
	}
	// Bad input names its path.
	e.admin("POST", "/api/v1/identity/conditionalAccess/evaluate", map[string]any{
		"signInIdentity":   map[string]any{"@odata.type": "#microsoft.graph.userSignIn", "userId": "0b9e2a4c-0000-4000-8000-000000000000"},
		"signInContext":    map[string]any{"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": []string{exchange}},
		"signInConditions": map[string]any{"clientAppType": "browser"},
	}).problem(http.StatusBadRequest, "InvalidRequest", "signInIdentity.userId")
	e.admin("POST", "/api/v1/identity/conditionalAccess/evaluate", map[string]any{
		"signInIdentity":   map[string]any{"@odata.type": "#microsoft.graph.userSignIn", "userId": alice},
		"signInContext":    map[string]any{"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": []string{exchange}},
		"signInConditions": map[string]any{"clientAppType": "carrierPigeon"},
	}).problem(http.StatusBadRequest, "InvalidRequest", "signInConditions.clientAppType")
}

func TestConditionalAccessReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, bob := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	admins := e.createGroup("Admins")
	e.addMember(admins, alice)
	for _, u := range []string{alice, bob} {
		e.admin("POST", "/api/v1/users/"+u+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
	}
	e.login("alice@contoso.com", "a long enough passphrase")
	e.login("bob@contoso.com", "a long enough passphrase")
	e.login("bob@contoso.com", "a long enough passphrase")
	e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": "bob@contoso.com", "password": "wrong passphrase!"}).want(http.StatusUnauthorized)

	// Candidate: everyone but Admins must use MFA for the admin API.
	candidate := []map[string]any{{
		"displayName": "MFA for the admin API", "state": "enabled",
		"conditions": map[string]any{
			"users":          map[string]any{"includeUsers": []string{"All"}, "excludeGroups": []string{admins}},
			"applications":   map[string]any{"includeApplications": []string{"1b4f2c6a-9d3e-4a7b-8c5f-0e2d6a9b3c71"}},
			"clientAppTypes": []string{"all"},
		},
		"grantControls": map[string]any{"operator": "OR", "builtInControls": []string{"mfa"}},
	}}
	var out struct {
		SignIns, Evaluated, ChangedTotal int
		Current, Candidate               struct{ Block, Interrupt, Grant, NotApplied int }
		Changed                          []struct{ UserPrincipalName, Current, Candidate string }
		Users                            []struct {
			UserPrincipalName   string
			SignIns, Challenged int
		}
	}
	e.admin("POST", "/api/v1/identity/conditionalAccess/replay", map[string]any{"policies": candidate, "since": "1d"}).want(http.StatusOK).decode(&out)
	// Sign-ins: the bootstrap admin's, alice's, bob's two and bob's failed one.
	if out.SignIns != 5 || out.Evaluated != 5 || out.Current.NotApplied != 5 {
		t.Fatalf("replay counts: %+v", out)
	}
	if out.Candidate.Interrupt != 4 || out.Candidate.NotApplied != 1 || out.ChangedTotal != 4 {
		t.Fatalf("candidate outcomes: %+v", out)
	}
	if len(out.Users) != 2 || out.Users[0].UserPrincipalName != "bob@contoso.com" || out.Users[0].Challenged != 3 {
		t.Fatalf("users: %+v", out.Users)
	}
	for _, c := range out.Changed {
		if c.UserPrincipalName == "alice@contoso.com" || c.Current != "notApplied" || c.Candidate != "interrupt" {
			t.Fatalf("changed: %+v", out.Changed)
		}
	}
	// Bad input names its path.
	e.admin("POST", "/api/v1/identity/conditionalAccess/replay", map[string]any{"policies": candidate, "since": "forever"}).problem(http.StatusBadRequest, "InvalidRequest", "since")
	candidate[0]["state"] = "sometimes"
	e.admin("POST", "/api/v1/identity/conditionalAccess/replay", map[string]any{"policies": candidate}).problem(http.StatusBadRequest, "InvalidRequest", "policies[0].state")
}

// TestAdminAPIGuardedByRBAC: every route is an action on a scope decided
// by the RBAC engine, so roles can be narrow (one user) and Azure's
// built-in roles keep their meaning (Contributor cannot grant roles).
func TestAdminAPIGuardedByRBAC(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice, bob := e.createUser("alice@contoso.com"), e.createUser("bob@contoso.com")
	carol, dave := e.createUser("carol@contoso.com"), e.createUser("dave@contoso.com")
	token := func(id, upn string) string {
		e.admin("POST", "/api/v1/users/"+id+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
		tok, _ := e.login(upn, "a long enough passphrase")
		return tok
	}
	// Carol may manage alice only.
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": carol,
		"roleDefinitionId": "Verity Directory Writer", "scope": "/directory/users/" + alice}).want(http.StatusCreated)
	// Dave is a Contributor for the whole tenant.
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": dave,
		"roleDefinitionId": "Contributor", "scope": "/"}).want(http.StatusCreated)
	carolTok, daveTok := token(carol, "carol@contoso.com"), token(dave, "dave@contoso.com")
	e.live.WaitFor(context.Background(), 0)
	for range 100 { // the snapshot follows the store
		if e.call(carolTok, "PATCH", "/api/v1/users/"+alice, map[string]any{"jobTitle": "Engineer"}).status == http.StatusNoContent {
			break
		}
		sleep()
	}
	e.call(carolTok, "PATCH", "/api/v1/users/"+alice, map[string]any{"jobTitle": "Engineer"}).want(http.StatusNoContent)
	e.call(carolTok, "PATCH", "/api/v1/users/"+bob, map[string]any{"jobTitle": "Engineer"}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(carolTok, "GET", "/api/v1/users", nil).problem(http.StatusForbidden, "Forbidden", "")

	e.call(daveTok, "POST", "/api/v1/users", map[string]any{"userPrincipalName": "erin@contoso.com", "displayName": "Erin"}).want(http.StatusCreated)
	e.call(daveTok, "POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": dave,
		"roleDefinitionId": "Owner", "scope": "/"}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(daveTok, "POST", "/api/v1/apply", map[string]any{"roleAssignments": []map[string]any{{"user": "dave@contoso.com", "role": "Owner", "scope": "/"}}}).
		problem(http.StatusForbidden, "Forbidden", "")
	if me := e.call(daveTok, "GET", "/api/v1/me", nil).want(http.StatusOK).json(); me["adminAccess"] != "Reader" {
		t.Fatalf("dave's summary: %v", me)
	}
	// The denial is audited with the action, scope and reason.
	found := false
	for _, ev := range e.audit() {
		if ev.Action == "roleAssignments.create" && ev.Actor == dave && ev.Result == "denied" && strings.Contains(string(ev.Details), "Microsoft.Authorization/roleAssignments/write") {
			found = true
		}
	}
	if !found {
		t.Fatal("the denied escalation is not in the audit log with its action")
	}
}

func TestEffectiveAccessAndWhoCan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice := e.createUser("alice@contoso.com")
	writers := e.createGroup("Directory writers")
	e.addMember(writers, alice)
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": writers,
		"roleDefinitionId": "Verity Directory Writer", "scope": "/directory"}).want(http.StatusCreated)
	var perms struct {
		Value []struct {
			RoleDefinitionName, Scope, PrincipalID string
			Actions                                []string
		}
	}
	e.admin("GET", "/api/v1/authorization/permissions?principalId="+alice+"&scope=/directory/users", nil).want(http.StatusOK).decode(&perms)
	if len(perms.Value) != 1 || perms.Value[0].RoleDefinitionName != "Verity Directory Writer" || perms.Value[0].PrincipalID != writers {
		t.Fatalf("permissions: %+v", perms.Value)
	}
	var who struct{ Principals []string }
	e.admin("GET", "/api/v1/authorization/whoCan?action=Verity.Directory/users/write&scope=/directory/users", nil).want(http.StatusOK).decode(&who)
	if !slices.Contains(who.Principals, writers) || !slices.Contains(who.Principals, e.adminID) {
		t.Fatalf("who can write users: %v", who.Principals)
	}
	e.admin("GET", "/api/v1/authorization/whoCan?scope=/", nil).problem(http.StatusBadRequest, "InvalidRequest", "action")
	e.admin("GET", "/api/v1/authorization/permissions?principalId=nobody&scope=/", nil).problem(http.StatusBadRequest, "InvalidRequest", "principalId")
}

func TestCustomRolesAndDenyAssignments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	alice := e.createUser("alice@contoso.com")
	e.admin("POST", "/api/v1/users/"+alice+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
	// A custom role in `az role definition create` shape: read users, and nothing else.
	role := e.admin("POST", "/api/v1/authorization/roleDefinitions", map[string]any{
		"roleName": "User reader", "description": "Reads users", "assignableScopes": []string{"/directory"},
		"permissions": []map[string]any{{"actions": []string{"Verity.Directory/users/read"}, "notActions": []string{}, "dataActions": []string{}, "notDataActions": []string{}}},
	}).want(http.StatusCreated).json()
	roleID, _ := role["name"].(string)
	if roleID == "" || role["roleType"] != "CustomRole" {
		t.Fatalf("custom role: %v", role)
	}
	e.admin("POST", "/api/v1/authorization/roleDefinitions", map[string]any{"roleName": "Owner", "assignableScopes": []string{"/"},
		"permissions": []map[string]any{{"actions": []string{"*"}}}}).problem(http.StatusBadRequest, "InvalidRequest", "roleName")
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "roleDefinitionId": "0b9e2a4c-0000-4000-8000-000000000000",
		"scope": "/directory"}).problem(http.StatusBadRequest, "InvalidRequest", "roleDefinitionId")
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": alice, "roleDefinitionId": roleID, "scope": "/directory"}).want(http.StatusCreated)
	tok, _ := e.login("alice@contoso.com", "a long enough passphrase")
	for range 100 {
		if e.call(tok, "GET", "/api/v1/users", nil).status == http.StatusOK {
			break
		}
		sleep()
	}
	e.call(tok, "GET", "/api/v1/users", nil).want(http.StatusOK)
	e.call(tok, "GET", "/api/v1/groups", nil).problem(http.StatusForbidden, "Forbidden", "")
	// A role in use cannot be deleted.
	e.admin("DELETE", "/api/v1/authorization/roleDefinitions/"+roleID, nil).problem(http.StatusConflict, "Conflict", "")

	// A deny assignment beats the role: alice may no longer read users.
	e.admin("POST", "/api/v1/authorization/denyAssignments", map[string]any{
		"denyAssignmentName": "No user reads for alice", "scope": "/directory/users",
		"permissions": []map[string]any{{"actions": []string{"Verity.Directory/users/read"}}},
		"principals":  []map[string]any{{"id": alice, "type": "User"}},
	}).want(http.StatusCreated)
	for range 100 {
		if e.call(tok, "GET", "/api/v1/users", nil).status == http.StatusForbidden {
			break
		}
		sleep()
	}
	msg := e.call(tok, "GET", "/api/v1/users", nil).problem(http.StatusForbidden, "Forbidden", "")
	if !strings.Contains(msg, "deny assignment") {
		t.Fatalf("denial message %q", msg)
	}
	var builtIn struct{ Value []map[string]any }
	e.admin("GET", "/api/v1/authorization/roleDefinitions/builtIn", nil).want(http.StatusOK).decode(&builtIn)
	if len(builtIn.Value) < 928 {
		t.Fatalf("%d built-in roles", len(builtIn.Value))
	}
}

// TestRoleAssignmentsAtTheirScope: granting a role needs
// roleAssignments/write at the assignment's own scope, as in Azure, so an
// administrator delegated one branch can grant there and nowhere else.
func TestRoleAssignmentsAtTheirScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	uaa, bob := e.createUser("uaa@contoso.com"), e.createUser("bob@contoso.com")
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": uaa,
		"roleDefinitionId": "User Access Administrator", "scope": "/apps/payroll"}).want(http.StatusCreated)
	e.admin("POST", "/api/v1/users/"+uaa+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
	tok, _ := e.login("uaa@contoso.com", "a long enough passphrase")
	grant := func(scope string) response {
		return e.call(tok, "POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": bob, "roleDefinitionId": "Reader", "scope": scope})
	}
	for range 100 {
		if grant("/apps/payroll/reports").status == http.StatusCreated {
			break
		}
		sleep()
	}
	grant("/apps/payroll/runs").want(http.StatusCreated)
	grant("/").problem(http.StatusForbidden, "Forbidden", "")
	grant("/apps/hr").problem(http.StatusForbidden, "Forbidden", "")
}

// TestApplyKeepsAnOwner: a manifest that would leave no Owner is refused
// with 409, as the API's own last-Owner guard is.
func TestApplyKeepsAnOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	e.admin("POST", "/api/v1/apply", map[string]any{"users": []map[string]any{
		{"userPrincipalName": "admin@verity.local", "displayName": "Bootstrap administrator", "accountEnabled": false}}}).
		problem(http.StatusConflict, "Conflict", "")
}
