package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

const entraIssuer = "https://login.microsoftonline.com/0f0e0d0c-0000-4000-8000-0000000000a1/v2.0"

func entraIDP(groupID string) map[string]any {
	return map[string]any{
		"displayName": "Contoso Entra ID", "issuer": entraIssuer, "clientId": "c0ffee00-0000-4000-8000-000000000001",
		"clientSecret":    "Xy8Q~entra-client-secret-value-0001",
		"claimsMapping":   map[string]any{"userId": "oid"},
		"groupMappings":   []map[string]any{{"claimValue": "6f0a1d2c-0000-4000-8000-00000000e001", "groupId": groupID}},
		"jitProvisioning": true, "domainHints": []string{"Contoso.com"},
	}
}

// TestIdentityProviders: CRUD under Graph's path, the client secret
// write-only (sealed in a record; never in the object, a read, the audit
// log, the server log or an export), and what a provider needs of the rest
// of the directory.
func TestIdentityProviders(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		e := newEnv(t, st)
		admins := e.createGroup("Contoso admins")
		const base = "/api/v1/identity/identityProviders"
		const secret = "Xy8Q~entra-client-secret-value-0001"

		r := e.admin("POST", base, entraIDP(admins)).want(http.StatusCreated)
		created := r.json()
		id, _ := created["id"].(string)
		if !directory.IsGUID(id) || created["clientSecret"] != "****" || created["@odata.type"] != directory.ODataOpenIDConnectIdentityProvider ||
			created["scope"] != "openid profile email" || created["responseType"] != "code" || r.header.Get("Location") == "" {
			t.Fatalf("created %s", r.body)
		}
		if cm, _ := created["claimsMapping"].(map[string]any); cm["userId"] != "oid" || cm["groups"] != "groups" {
			t.Errorf("claimsMapping %v", created["claimsMapping"])
		}
		if d, _ := created["domainHints"].([]any); len(d) != 1 || d[0] != "contoso.com" {
			t.Errorf("domainHints %v", created["domainHints"])
		}
		obj, err := st.Get(ctx, directory.KindIdentityProvider, id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(obj.Body), "clientSecret") || strings.Contains(string(obj.Body), "entra-client-secret") || obj.Key != entraIssuer {
			t.Fatalf("stored object %s (key %q)", obj.Body, obj.Key)
		}
		idp, err := directory.IdentityProviders.FromObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := directory.IdentityProviderSecret(ctx, st, e.keys, idp); got != secret || err != nil {
			t.Fatalf("the sealed secret opens as %q, %v", got, err)
		}
		rec, err := st.GetRecord(ctx, directory.KindIdentityProviderSecret, id)
		if err != nil || strings.Contains(string(rec.Body), "entra-client-secret") {
			t.Fatalf("secret record %s, %v", rec.Body, err)
		}
		if got := e.admin("GET", base+"/"+id, nil).want(http.StatusOK).json(); got["clientSecret"] != "****" || got["displayName"] != "Contoso Entra ID" {
			t.Errorf("GET = %v", got)
		}
		var page struct{ Value []map[string]any }
		e.admin("GET", base, nil).want(http.StatusOK).decode(&page)
		if len(page.Value) != 1 || page.Value[0]["clientSecret"] != "****" {
			t.Errorf("list = %v", page.Value)
		}

		// The placeholder keeps the secret; a new one replaces it; null
		// removes it.
		e.admin("PATCH", base+"/"+id, map[string]any{"clientSecret": "****", "displayName": "Contoso"}).want(http.StatusNoContent)
		if got, _ := directory.IdentityProviderSecret(ctx, st, e.keys, idp); got != secret {
			t.Errorf("the placeholder changed the secret to %q", got)
		}
		const rotated = "Zq9R~rotated-client-secret-value-0002"
		e.admin("PATCH", base+"/"+id, map[string]any{"clientSecret": rotated}).want(http.StatusNoContent)
		if got, _ := directory.IdentityProviderSecret(ctx, st, e.keys, idp); got != rotated {
			t.Errorf("after rotation the secret is %q", got)
		}
		if got := e.admin("GET", base+"/"+id, nil).json(); got["displayName"] != "Contoso" || got["clientSecret"] != "****" {
			t.Errorf("after the updates: %v", got)
		}
		e.admin("PATCH", base+"/"+id, map[string]any{"clientSecret": nil}).want(http.StatusNoContent)
		if got := e.admin("GET", base+"/"+id, nil).json(); got["clientSecret"] != nil {
			t.Errorf("after removing the secret: %v", got)
		}
		e.admin("PATCH", base+"/"+id, map[string]any{"clientSecret": secret}).want(http.StatusNoContent)

		// Bad input names its path.
		bad := func(mut func(map[string]any), status int, code, target string) {
			t.Helper()
			b := entraIDP(admins)
			b["issuer"] = "https://idp.fabrikam.com"
			b["domainHints"] = []string{"fabrikam.com"}
			mut(b)
			e.admin("POST", base, b).problem(status, code, target)
		}
		bad(func(b map[string]any) { b["issuer"] = "http://idp.fabrikam.com" }, http.StatusBadRequest, "InvalidRequest", "issuer")
		bad(func(b map[string]any) { b["metadataUrl"] = "https://idp.fabrikam.com/.well-known/openid-configuration" }, http.StatusBadRequest, "InvalidRequest", "metadataUrl")
		bad(func(b map[string]any) { b["responseType"] = "id_token" }, http.StatusBadRequest, "InvalidRequest", "responseType")
		bad(func(b map[string]any) {
			b["groupMappings"] = []map[string]any{{"claimValue": "x", "groupId": "99999999-0000-4000-8000-000000000001"}}
		}, http.StatusBadRequest, "InvalidRequest", "groupMappings[0].groupId")
		bad(func(b map[string]any) { b["issuer"] = entraIssuer }, http.StatusConflict, "Conflict", "issuer")
		bad(func(b map[string]any) { b["domainHints"] = []string{"fabrikam.com", "CONTOSO.com"} }, http.StatusConflict, "Conflict", "domainHints[1]")
		bad(func(b map[string]any) { b["clientSecret"] = 42 }, http.StatusBadRequest, "InvalidRequest", "clientSecret")
		bad(func(b map[string]any) { b["clientSecret"] = "****" }, http.StatusBadRequest, "InvalidRequest", "clientSecret")
		e.admin("PATCH", base+"/"+id, map[string]any{"mfaClaim": map[string]any{"amrValues": []string{""}}}).
			problem(http.StatusBadRequest, "InvalidRequest", "mfaClaim.amrValues[0]")
		e.admin("PATCH", base+"/"+id, map[string]any{"clientSecret": strings.Repeat("x", 1025)}).
			problem(http.StatusBadRequest, "InvalidRequest", "clientSecret")

		// The export carries the provider, not its secret.
		exported := e.admin("GET", "/api/v1/export", nil).want(http.StatusOK)
		if !strings.Contains(string(exported.body), entraIssuer) {
			t.Errorf("the export lacks the provider: %s", exported.body)
		}

		e.admin("DELETE", base+"/"+id, nil).want(http.StatusNoContent)
		if _, err := st.GetRecord(ctx, directory.KindIdentityProviderSecret, id); err == nil {
			t.Error("the secret record outlived its provider")
		}
		e.admin("GET", base+"/"+id, nil).problem(http.StatusNotFound, "NotFound", "")

		// No secret anywhere: responses, audit events, logs, the export.
		var actions []string
		for _, ev := range e.audit() {
			if strings.HasPrefix(ev.Action, "identityProviders.") {
				actions = append(actions, ev.Action+":"+ev.Result)
			}
			for _, s := range []string{secret, rotated, "entra-client-secret", "rotated-client-secret"} {
				if strings.Contains(string(ev.Details), s) || strings.Contains(ev.Target, s) {
					t.Errorf("audit event %s holds the secret: %s", ev.Action, ev.Details)
				}
			}
		}
		if want := "identityProviders.create:success"; len(actions) == 0 || actions[0] != want {
			t.Errorf("audit actions %v; want %s first", actions, want)
		}
		for _, s := range []string{secret, rotated, "entra-client-secret", "rotated-client-secret"} {
			if strings.Contains(e.logs.String(), s) || strings.Contains(string(exported.body), s) {
				t.Errorf("a log line or the export holds %q", s)
			}
		}
	})
}

// TestIdentityProvidersNeedTheirPermission: Reader reads providers but
// cannot write them; Owner can.
func TestIdentityProvidersNeedTheirPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	reader := e.createUser("reader@contoso.com")
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": reader,
		"roleDefinitionId": "Reader", "scope": "/"}).want(http.StatusCreated)
	e.admin("POST", "/api/v1/users/"+reader+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
	tok, _ := e.login("reader@contoso.com", "a long enough passphrase")
	body := entraIDP(e.createGroup("Contoso admins"))
	for range 100 { // the snapshot follows the store
		if e.call(tok, "GET", "/api/v1/identity/identityProviders", nil).status == http.StatusOK {
			break
		}
		sleep()
	}
	e.call(tok, "GET", "/api/v1/identity/identityProviders", nil).want(http.StatusOK)
	e.call(tok, "POST", "/api/v1/identity/identityProviders", body).problem(http.StatusForbidden, "Forbidden", "")

	// A directory writer manages users and groups but not who may sign in
	// as them: an identity provider that provisions into a privileged
	// group would be a way to more privilege.
	writer := e.createUser("writer@contoso.com")
	e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": writer,
		"roleDefinitionId": "Verity Directory Writer", "scope": "/"}).want(http.StatusCreated)
	e.admin("POST", "/api/v1/users/"+writer+"/password", map[string]string{"password": "a long enough passphrase"}).want(http.StatusNoContent)
	wtok, _ := e.login("writer@contoso.com", "a long enough passphrase")
	for range 100 {
		if e.call(wtok, "GET", "/api/v1/users", nil).status == http.StatusOK {
			break
		}
		sleep()
	}
	e.call(wtok, "POST", "/api/v1/groups", map[string]any{"displayName": "written"}).want(http.StatusCreated)
	e.call(wtok, "POST", "/api/v1/identity/identityProviders", body).problem(http.StatusForbidden, "Forbidden", "")

	e.admin("POST", "/api/v1/identity/identityProviders", body).want(http.StatusCreated)
	for _, ev := range e.audit() {
		if ev.Action == "identityProviders.create" && ev.Result == "denied" && !strings.Contains(string(ev.Details), "Verity.Directory/identityProviders/write") {
			t.Errorf("the denial does not name the action: %s", ev.Details)
		}
	}
}
