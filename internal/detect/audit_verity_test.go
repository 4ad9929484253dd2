package detect_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/api"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/bootstrap"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// verityAPI is Verity's API on a real SQLite store with the bootstrap
// administrator signed in.
type verityAPI struct {
	t     *testing.T
	st    store.Store
	url   string
	token string
}

func newVerityAPI(t *testing.T) *verityAPI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.OpenSQLite(t)
	log := slog.New(slog.DiscardHandler)
	boot, err := bootstrap.Admin(ctx, st)
	if err != nil || boot == nil {
		t.Fatalf("bootstrap: %v %v", boot, err)
	}
	live, err := decision.NewLive(ctx, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	go live.Run(ctx, 50e6)
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	keys, err := keyring.Open(ctx, st, master, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	pages, err := signin.New(signin.Options{Store: st, Live: live, Sealer: keys, Logger: log, AppID: api.AdminAPIAppID,
		MaxFailures: cfg.Auth.MaxFailedLogins, LockDuration: cfg.Auth.LockoutDuration.D(), PasswordPolicy: authn.DefaultPasswordPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Options{Store: st, Live: live, Logger: log, Registry: prometheus.NewRegistry(), HTTP: cfg.HTTP, Auth: cfg.Auth,
		Version: "test", SignIn: pages, PasswordPolicy: authn.DefaultPasswordPolicy(), Sealer: keys})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	v := &verityAPI{t: t, st: st, url: srv.URL}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	v.call("POST", "/api/v1/login", map[string]string{"userPrincipalName": bootstrap.AdminUPN, "password": boot.Password}, http.StatusOK, &login)
	v.token = login.AccessToken
	return v
}

func (v *verityAPI) call(method, path string, body any, want int, out any) {
	v.t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, v.url+path, bytes.NewReader(b))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if v.token != "" {
		req.Header.Set("Authorization", "Bearer "+v.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	if resp.StatusCode != want {
		v.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, buf.Bytes())
	}
	if out != nil {
		if err := json.Unmarshal(buf.Bytes(), out); err != nil {
			v.t.Fatal(err)
		}
	}
}

func (v *verityAPI) create(path string, body any) string {
	var obj struct {
		ID    string `json:"id"`
		AppID string `json:"appId"`
	}
	v.call("POST", path, body, http.StatusCreated, &obj)
	return obj.ID
}

// TestVerityAuditLogRaisesAuditAlerts makes directory changes through
// Verity's API, reads them back from its audit log, maps them with
// AuditRecordFromVerity and runs the audit detectors on them, as the
// engine does: an account created and deleted, a direct directory role
// assignment, a client secret added, and the password of a Global
// Administrator reset raise their alerts.
func TestVerityAuditLogRaisesAuditAlerts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := newVerityAPI(t)
	const globalAdmin, owner = "62e90394-69f5-4237-9190-012177145e10", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"

	bob := v.create("/api/v1/users", map[string]any{"userPrincipalName": "bob@contoso.com", "displayName": "Bob"})
	v.create("/api/v1/roleManagement/directory/roleAssignments", map[string]any{"principalId": bob, "roleDefinitionId": globalAdmin, "directoryScopeId": "/"})
	v.create("/api/v1/authorization/roleAssignments", map[string]any{"principalId": bob, "roleDefinitionId": owner, "scope": "/"})
	v.call("POST", "/api/v1/users/"+bob+"/password", map[string]string{"password": "correct horse battery staple"}, http.StatusNoContent, nil)
	tmp := v.create("/api/v1/users", map[string]any{"userPrincipalName": "tmp@contoso.com", "displayName": "Temp"})
	v.call("DELETE", "/api/v1/users/"+tmp, nil, http.StatusNoContent, nil)
	var app struct {
		ID    string `json:"id"`
		AppID string `json:"appId"`
	}
	v.call("POST", "/api/v1/applications", map[string]any{"displayName": "Payroll"}, http.StatusCreated, &app)
	v.call("POST", "/api/v1/applications/"+app.ID+"/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "ci"}}, http.StatusOK, nil)

	head, err := v.st.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, err := v.st.AuditLeaves(ctx, 0, int(head.Size))
	if err != nil {
		t.Fatal(err)
	}
	var recs []detect.AuditRecord
	for i := range events {
		if r, ok := detect.AuditRecordFromVerity(&events[i]); ok {
			recs = append(recs, r)
		}
	}
	ds := detect.DefaultAuditDetectors()
	for _, d := range ds {
		if d, ok := d.(*detect.AuthMethodsChangedPrivileged); ok {
			// As the engine may: a user with a directory role is privileged.
			d.Privileged = func(id string) bool {
				objs, err := v.st.List(ctx, directory.KindRoleAssignment, store.ListOptions{})
				if err != nil {
					t.Error(err)
				}
				return slices.ContainsFunc(objs, func(o store.Object) bool {
					a, err := directory.RoleAssignments.FromObject(o)
					return err == nil && a.PrincipalID == id
				})
			}
		}
	}
	got := map[string][]detect.Alert{}
	for _, a := range detect.RunAudit(recs, ds) {
		got[a.Detector] = append(got[a.Detector], a)
	}
	if a := got["accountCreatedDeleted"]; len(a) != 1 || a[0].UserID != tmp || len(a[0].Evidence) != 2 {
		t.Errorf("created and deleted: %+v", a)
	}
	if a := got["roleAssignedOutsidePIM"]; len(a) != 2 || a[0].UserID != bob || a[1].UserID != bob {
		t.Errorf("outside PIM: %+v (Global Administrator and Owner, both direct)", a)
	}
	if a := got["credentialAdded"]; len(a) != 1 || a[0].AppID != app.AppID || a[0].Severity != "medium" {
		t.Errorf("client secret: %+v", a)
	}
	if a := got["authMethodsChangedPrivileged"]; len(a) != 1 || a[0].UserID != bob {
		t.Errorf("password reset of a Global Administrator: %+v", a)
	}
	// The API's role assignment events name the principal and the role:
	// Global Administrator and Owner are privileged, new for bob.
	if a := got["privilegedRoleAssigned"]; len(a) != 2 || a[0].UserID != bob || !strings.Contains(a[0].Summary, "Global Administrator") ||
		!strings.Contains(a[1].Summary, "Owner") {
		t.Errorf("privileged role: %+v", a)
	}
	if len(got) != 5 {
		t.Errorf("alerts %v", got)
	}
}
