package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// oidcApp is an application registration with a redirect URI on every
// platform.
func oidcApp(appID string) map[string]any {
	return map[string]any{
		"appId": appID, "displayName": "Contoso Expenses", "isFallbackPublicClient": false,
		"web": map[string]any{"redirectUris": []string{"https://expenses.contoso.com/signin-oidc"}, "logoutUrl": "https://expenses.contoso.com/signout-oidc",
			"implicitGrantSettings": map[string]any{"enableIdTokenIssuance": false}},
		"spa":          map[string]any{"redirectUris": []string{"https://expenses.contoso.com/app/"}},
		"publicClient": map[string]any{"redirectUris": []string{"com.contoso.expenses:/oauth2redirect", "http://localhost"}},
	}
}

type passwordCredential struct {
	KeyID         string    `json:"keyId"`
	DisplayName   string    `json:"displayName"`
	Hint          string    `json:"hint"`
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
	SecretText    *string   `json:"secretText"`
}

func TestApplicationClientSecrets(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		e := newEnv(t, st)
		const appID = "3f9c7a52-6b1e-4d0a-9e8f-2c4b7d1a5e60"
		var app struct {
			ID  string
			Web struct{ RedirectURIs []string }
		}
		r := e.admin("POST", "/api/v1/applications", oidcApp(appID)).want(http.StatusCreated)
		r.decode(&app)
		if len(app.Web.RedirectURIs) != 1 || strings.Contains(string(r.body), "passwordCredentials") || strings.Contains(string(r.body), "implicitGrantSettings") {
			t.Fatalf("created %s", r.body)
		}
		base := "/api/v1/applications/" + app.ID

		// addPassword answers the secret once.
		end := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		var added passwordCredential
		e.admin("POST", base+"/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "prod", "endDateTime": end}}).
			want(http.StatusOK).decode(&added)
		if added.SecretText == nil || len(*added.SecretText) < 43 || added.Hint != (*added.SecretText)[:3] || !directory.IsGUID(added.KeyID) ||
			added.DisplayName != "prod" || !added.EndDateTime.Equal(end) {
			t.Fatalf("addPassword = %+v", added)
		}
		secret := *added.SecretText
		if err := directory.VerifyClientSecret(ctx, st, appID, secret); err != nil {
			t.Fatalf("the new secret does not verify: %v", err)
		}
		var second passwordCredential
		e.admin("POST", base+"/addPassword", map[string]any{}).want(http.StatusOK).decode(&second)
		if d := second.EndDateTime.Sub(second.StartDateTime); d != 180*24*time.Hour {
			t.Errorf("default lifetime %v; want 180 days", d)
		}

		// Reads show the metadata, never the secret.
		var got struct {
			PasswordCredentials []passwordCredential
		}
		r = e.admin("GET", base, nil).want(http.StatusOK)
		r.decode(&got)
		if len(got.PasswordCredentials) != 2 || got.PasswordCredentials[0].KeyID != added.KeyID || got.PasswordCredentials[0].Hint != added.Hint ||
			got.PasswordCredentials[0].SecretText != nil || strings.Contains(string(r.body), secret) {
			t.Fatalf("GET = %s", r.body)
		}
		list := e.admin("GET", "/api/v1/applications", nil).want(http.StatusOK)
		if !strings.Contains(string(list.body), added.KeyID) || strings.Contains(string(list.body), secret) {
			t.Errorf("list = %s", list.body)
		}

		// passwordCredentials cannot be written through the object.
		e.admin("PATCH", base, map[string]any{"passwordCredentials": []any{}, "description": "Expenses"}).want(http.StatusNoContent)
		if r := e.admin("GET", base, nil); !strings.Contains(string(r.body), added.KeyID) {
			t.Errorf("PATCH removed a credential: %s", r.body)
		}
		e.admin("PATCH", base, map[string]any{"passwordCredentials": []any{map[string]any{"keyId": added.KeyID, "secretText": "guess"}}}).
			problem(http.StatusBadRequest, "InvalidRequest", "passwordCredentials[0].secretText")

		// Bad requests say where.
		for _, tt := range []struct {
			path   string
			body   any
			status int
			code   string
			target string
		}{
			{base + "/addPassword", map[string]any{"passwordCredential": map[string]any{"endDateTime": time.Now().Add(-time.Hour)}}, 400, "InvalidRequest", "passwordCredential.endDateTime"},
			{base + "/addPassword", map[string]any{"passwordCredential": map[string]any{"endDateTime": time.Now().AddDate(2, 1, 0)}}, 400, "InvalidRequest", "passwordCredential.endDateTime"},
			{base + "/addPassword", map[string]any{"passwordCredential": map[string]any{"secretText": "mine"}}, 400, "InvalidRequest", "passwordCredential.secretText"},
			{base + "/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": strings.Repeat("n", 257)}}, 400, "InvalidRequest", "passwordCredential.displayName"},
			{base + "/addPassword", map[string]any{"credential": map[string]any{}}, 400, "InvalidRequest", "credential"},
			{"/api/v1/applications/" + directory.NewID() + "/addPassword", map[string]any{}, 404, "NotFound", ""},
			{base + "/removePassword", map[string]any{}, 400, "InvalidRequest", "keyId"},
			{base + "/removePassword", map[string]any{"keyId": "prod"}, 400, "InvalidRequest", "keyId"},
			{base + "/removePassword", map[string]any{"keyId": directory.NewID()}, 404, "NotFound", "keyId"},
		} {
			e.admin("POST", tt.path, tt.body).problem(tt.status, tt.code, tt.target)
		}

		// removePassword: the secret stops working at once.
		e.admin("POST", base+"/removePassword", map[string]any{"keyId": strings.ToUpper(added.KeyID)}).want(http.StatusNoContent)
		if err := directory.VerifyClientSecret(ctx, st, appID, secret); !errors.Is(err, directory.ErrInvalidClientSecret) {
			t.Errorf("a removed secret: %v", err)
		}
		e.admin("POST", base+"/removePassword", map[string]any{"keyId": added.KeyID}).problem(http.StatusNotFound, "NotFound", "keyId")
		if r := e.admin("GET", base, nil); strings.Contains(string(r.body), added.KeyID) || !strings.Contains(string(r.body), second.KeyID) {
			t.Errorf("after removePassword: %s", r.body)
		}

		// An export carries the application, not its credentials.
		exp := e.admin("GET", "/api/v1/export", nil).want(http.StatusOK)
		if !strings.Contains(string(exp.body), appID) || strings.Contains(string(exp.body), "passwordCredentials") ||
			strings.Contains(string(exp.body), second.KeyID) || strings.Contains(string(exp.body), *second.SecretText) {
			t.Errorf("export = %s", exp.body)
		}

		// Deleting the application deletes its secrets.
		e.admin("DELETE", base, nil).want(http.StatusNoContent)
		if recs, err := st.ListRecords(ctx, directory.KindClientSecret, appID, 0); err != nil || len(recs) != 0 {
			t.Errorf("records after delete: %d, %v", len(recs), err)
		}

		// No secret reaches the audit log or the node's log.
		var adds, removes int
		for _, ev := range e.audit() {
			for _, s := range []string{secret, *second.SecretText} {
				if strings.Contains(string(ev.Details), s) || strings.Contains(string(ev.Details), s[8:]) {
					t.Errorf("audit event %s holds a secret: %s", ev.Action, ev.Details)
				}
			}
			if ev.Action == "applications.addPassword" && ev.Result == "success" {
				adds++
				if !strings.Contains(string(ev.Details), `"keyId"`) || !strings.Contains(string(ev.Details), app.ID) {
					t.Errorf("addPassword audit details %s", ev.Details)
				}
			}
			if ev.Action == "applications.removePassword" && ev.Result == "success" {
				removes++
				if !strings.Contains(string(ev.Details), added.KeyID) {
					t.Errorf("removePassword audit details %s", ev.Details)
				}
			}
		}
		if adds != 2 || removes != 1 {
			t.Errorf("audited %d addPassword and %d removePassword successes; want 2 and 1", adds, removes)
		}
		for _, s := range []string{secret, *second.SecretText} {
			if logs := e.logs.String(); strings.Contains(logs, s) || strings.Contains(logs, s[8:]) {
				t.Errorf("the log holds a client secret:\n%s", logs)
			}
		}
	})
}

// TestApplicationCredentialPermissions: adding a secret needs
// Verity.Directory/applications/credentials/write at the application.
// Reader lacks it; Verity Directory Writer has it, and an assignment at one
// application reaches that application only.
func TestApplicationCredentialPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	var a, b struct{ ID string }
	e.admin("POST", "/api/v1/applications", oidcApp(directory.NewID())).want(http.StatusCreated).decode(&a)
	e.admin("POST", "/api/v1/applications", oidcApp(directory.NewID())).want(http.StatusCreated).decode(&b)

	grant := func(upn, role, scope string) string {
		id := e.createUser(upn)
		e.admin("POST", "/api/v1/users/"+id+"/password", map[string]string{"password": "correct horse battery"}).want(http.StatusNoContent)
		e.admin("POST", "/api/v1/authorization/roleAssignments", map[string]any{"principalId": id, "roleDefinitionId": role, "scope": scope}).
			want(http.StatusCreated)
		tok, _ := e.login(upn, "correct horse battery")
		return tok
	}
	const directoryWriter = "cbbe2f17-f93d-4777-b660-edd639efa997"
	reader := grant("reader@contoso.com", "Reader", "/")
	writer := grant("writer@contoso.com", directoryWriter, "/directory/applications/"+a.ID)

	msg := e.call(reader, "POST", "/api/v1/applications/"+a.ID+"/addPassword", map[string]any{}).problem(http.StatusForbidden, "Forbidden", "")
	if !strings.Contains(msg, "Verity.Directory/applications/credentials/write") || !strings.Contains(msg, "/directory/applications/"+a.ID) {
		t.Errorf("message %q does not name the permission and scope", msg)
	}
	e.call(reader, "GET", "/api/v1/applications/"+a.ID, nil).want(http.StatusOK)

	var added passwordCredential
	e.call(writer, "POST", "/api/v1/applications/"+a.ID+"/addPassword", map[string]any{}).want(http.StatusOK).decode(&added)
	e.call(reader, "POST", "/api/v1/applications/"+a.ID+"/removePassword", map[string]any{"keyId": added.KeyID}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(writer, "POST", "/api/v1/applications/"+b.ID+"/addPassword", map[string]any{}).problem(http.StatusForbidden, "Forbidden", "")
	e.call(writer, "POST", "/api/v1/applications/"+a.ID+"/removePassword", map[string]any{"keyId": added.KeyID}).want(http.StatusNoContent)
	e.admin("POST", "/api/v1/applications/"+b.ID+"/addPassword", map[string]any{}).want(http.StatusOK)
}
