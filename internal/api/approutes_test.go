package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

const routesBase = "/api/v1/appRoutes"

// payrollRoute is a route body for the application appID.
func payrollRoute(appID, from string) map[string]any {
	rule := map[string]any{"methods": []string{"post"}, "pathPrefix": "/app/runs", "dataAction": "Verity.Apps/apps/payroll/runs/write/action"}
	return map[string]any{
		"displayName": "Contoso Payroll", "appId": appID, "from": from,
		"to": []string{"http://10.20.0.11:8080"}, "publicPaths": []string{"/app/healthz"}, "allowPreflight": true,
		"rules": []map[string]any{rule}, "upstreamTimeoutSeconds": 60,
	}
}

// TestAppRoutes: create, list, get, update and delete under
// /api/v1/appRoutes; from is normalised and unique; bad input names its
// JSON path; every call is audited; the export carries the route.
func TestAppRoutes(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		appID := directory.NewID()
		e.admin("POST", "/api/v1/applications", map[string]any{"appId": appID, "displayName": "Contoso Payroll"}).want(http.StatusCreated)

		r := e.admin("POST", routesBase, payrollRoute(appID, "HTTPS://Payroll.Contoso.com:443/app")).want(http.StatusCreated)
		created := r.json()
		id, _ := created["id"].(string)
		if !directory.IsGUID(id) || created["from"] != "https://payroll.contoso.com/app/" || created["createdDateTime"] == nil ||
			r.header.Get("Location") != routesBase+"/"+id || r.header.Get("ETag") == "" {
			t.Fatalf("created %s (Location %q)", r.body, r.header.Get("Location"))
		}
		if rules, _ := created["rules"].([]any); len(rules) != 1 || rules[0].(map[string]any)["methods"].([]any)[0] != "POST" {
			t.Errorf("rules %v", created["rules"])
		}
		obj, err := st.Get(t.Context(), directory.KindAppRoute, id)
		if err != nil || obj.Key != "https://payroll.contoso.com/app/" {
			t.Fatalf("stored %+v, %v", obj, err)
		}

		var page struct{ Value []map[string]any }
		e.admin("GET", routesBase, nil).want(http.StatusOK).decode(&page)
		if len(page.Value) != 1 || page.Value[0]["id"] != id {
			t.Errorf("list = %v", page.Value)
		}
		got := e.admin("GET", routesBase+"/"+id, nil).want(http.StatusOK)
		if got.json()["displayName"] != "Contoso Payroll" || got.header.Get("ETag") == "" {
			t.Errorf("GET = %s", got.body)
		}

		e.admin("PATCH", routesBase+"/"+id, map[string]any{"to": []string{"http://10.20.0.11:8080", "http://10.20.0.12:8080"}, "publicPaths": nil}).
			want(http.StatusNoContent)
		if got := e.admin("GET", routesBase+"/"+id, nil).json(); len(got["to"].([]any)) != 2 || got["publicPaths"] != nil || got["allowPreflight"] != true {
			t.Errorf("after the update: %v", got)
		}

		// Bad input names its path, on create and on update.
		bad := func(mut func(map[string]any), target string) {
			t.Helper()
			b := payrollRoute(appID, "https://expenses.contoso.com/")
			mut(b)
			e.admin("POST", routesBase, b).problem(http.StatusBadRequest, "InvalidRequest", target)
		}
		bad(func(b map[string]any) { b["from"] = "ftp://expenses.contoso.com/" }, "from")
		bad(func(b map[string]any) { delete(b, "from") }, "from")
		bad(func(b map[string]any) { b["to"] = []string{"unix:///run/expenses.sock"} }, "to[0]")
		bad(func(b map[string]any) {
			b["rules"] = []map[string]any{{"pathPrefix": "/", "dataAction": "Verity.Apps/*"}}
		}, "rules[0].dataAction")
		bad(func(b map[string]any) { b["upstream"] = "http://10.20.0.13:8080" }, "upstream")
		bad(func(b map[string]any) { b["appId"] = "payroll" }, "appId")
		e.admin("PATCH", routesBase+"/"+id, map[string]any{"rules": []map[string]any{{"pathPrefix": "runs", "dataAction": "Verity.Apps/apps/access/action"}}}).
			problem(http.StatusBadRequest, "InvalidRequest", "rules[0].pathPrefix")

		// A URL belongs to one route, however it is written.
		msg := e.admin("POST", routesBase, payrollRoute(appID, "https://PAYROLL.contoso.com/app/")).problem(http.StatusConflict, "Conflict", "from")
		if !strings.Contains(msg, id) {
			t.Errorf("the conflict does not name the route that holds the URL: %q", msg)
		}
		var other struct{ ID string }
		e.admin("POST", routesBase, payrollRoute(appID, "https://payroll.contoso.com/api/")).want(http.StatusCreated).decode(&other)
		e.admin("PATCH", routesBase+"/"+other.ID, map[string]any{"from": "https://payroll.contoso.com/app"}).problem(http.StatusConflict, "Conflict", "from")

		exported := e.admin("GET", "/api/v1/export", nil).want(http.StatusOK)
		if !strings.Contains(string(exported.body), `"appRoutes"`) || !strings.Contains(string(exported.body), "https://payroll.contoso.com/app/") {
			t.Errorf("the export lacks the route: %s", exported.body)
		}

		e.admin("DELETE", routesBase+"/"+id, nil).want(http.StatusNoContent)
		e.admin("GET", routesBase+"/"+id, nil).problem(http.StatusNotFound, "NotFound", "")
		e.admin("DELETE", routesBase+"/"+id, nil).problem(http.StatusNotFound, "NotFound", "")

		var actions []string
		for _, ev := range e.audit() {
			if strings.HasPrefix(ev.Action, "appRoutes.") && ev.Result == "success" {
				actions = append(actions, ev.Action)
			}
		}
		want := "appRoutes.create appRoutes.list appRoutes.get appRoutes.update appRoutes.get appRoutes.create appRoutes.delete"
		if strings.Join(actions, " ") != want {
			t.Errorf("audited successes %v; want %s", actions, want)
		}
	})
}

// TestAppRoutesScopedToTheirApplication: writing a route is authorised at
// /apps/{appId} of its application, before and after the change, so an
// Owner of one application publishes that one only; reading routes is an
// action at /apps. Verity Directory Writer, which manages application
// registrations, publishes none: a route decides which paths need no
// sign-in, as an identity provider decides who signs in.
func TestAppRoutesScopedToTheirApplication(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	appA, appB := directory.NewID(), directory.NewID()
	grant := func(upn, role, scope string) string {
		id := e.createUser(upn)
		e.admin("POST", "/api/v1/users/"+id+"/password", map[string]string{"password": "correct horse battery"}).want(http.StatusNoContent)
		e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": id, "roleDefinitionId": role, "scope": scope}).
			want(http.StatusCreated)
		tok, _ := e.login(upn, "correct horse battery")
		return tok
	}
	owner := grant("payroll-owner@contoso.com", "Owner", "/apps/"+appA)
	reader := grant("reader@contoso.com", "Reader", "/")
	securityReader := grant("security-reader@contoso.com", "Verity Security Reader", "/")
	writer := grant("writer@contoso.com", "Verity Directory Writer", "/")

	var mine, theirs struct{ ID string }
	e.call(owner, "POST", routesBase, payrollRoute(appA, "https://payroll.contoso.com/")).want(http.StatusCreated).decode(&mine)
	msg := e.call(owner, "POST", routesBase, payrollRoute(appB, "https://expenses.contoso.com/")).problem(http.StatusForbidden, "Forbidden", "")
	if !strings.Contains(msg, "Verity.Apps/routes/write") || !strings.Contains(msg, "/apps/"+appB) {
		t.Errorf("message %q does not name the permission and the other application's scope", msg)
	}
	e.admin("POST", routesBase, payrollRoute(appB, "https://expenses.contoso.com/")).want(http.StatusCreated).decode(&theirs)

	e.call(owner, "PATCH", routesBase+"/"+mine.ID, map[string]any{"displayName": "Payroll"}).want(http.StatusNoContent)
	e.call(owner, "PATCH", routesBase+"/"+mine.ID, map[string]any{"appId": appB}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(owner, "PATCH", routesBase+"/"+theirs.ID, map[string]any{"displayName": "Mine now"}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(owner, "PATCH", routesBase+"/"+theirs.ID, map[string]any{"appId": appA}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(owner, "DELETE", routesBase+"/"+theirs.ID, nil).problem(http.StatusForbidden, "Forbidden", "")
	e.call(owner, "GET", routesBase, nil).problem(http.StatusForbidden, "Forbidden", "")

	for _, tok := range []string{reader, securityReader} {
		e.call(tok, "GET", routesBase, nil).want(http.StatusOK)
		e.call(tok, "GET", routesBase+"/"+mine.ID, nil).want(http.StatusOK)
		e.call(tok, "POST", routesBase, payrollRoute(appA, "https://reports.contoso.com/")).problem(http.StatusForbidden, "Forbidden", "")
		e.call(tok, "DELETE", routesBase+"/"+mine.ID, nil).problem(http.StatusForbidden, "Forbidden", "")
	}
	e.call(writer, "POST", "/api/v1/applications", map[string]any{"appId": appA, "displayName": "Contoso Payroll"}).want(http.StatusCreated)
	e.call(writer, "POST", routesBase, payrollRoute(appA, "https://reports.contoso.com/")).problem(http.StatusForbidden, "Forbidden", "")

	e.call(owner, "DELETE", routesBase+"/"+mine.ID, nil).want(http.StatusNoContent)
	if got := e.admin("GET", routesBase+"/"+theirs.ID, nil).want(http.StatusOK).json(); got["appId"] != appB || got["displayName"] != "Contoso Payroll" {
		t.Errorf("the other application's route changed: %v", got)
	}
	denied := false
	for _, ev := range e.audit() {
		if ev.Action == "appRoutes.create" && ev.Result == "denied" && strings.Contains(string(ev.Details), "/apps/"+appB) {
			denied = true
		}
	}
	if !denied {
		t.Error("the refused create is not audited with its scope")
	}
}
