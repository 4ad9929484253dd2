package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/api"
	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/bootstrap"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engines runs fn once per store engine, each on a fresh database.
func engines(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Helper()
	for _, e := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}, {"postgres", storetest.OpenPostgres}} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.open(t))
		})
	}
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one API server on a real store, with the bootstrap admin signed in.
type env struct {
	t        *testing.T
	st       store.Store
	srv      *httptest.Server
	live     *decision.Live
	logs     *syncBuffer
	password string // the bootstrap admin's
	token    string // the bootstrap admin's
	adminID  string
	keys     *keyring.Keyring // seals identity providers' client secrets
}

func newEnv(t *testing.T, st store.Store, mutate ...func(*config.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	boot, err := bootstrap.Admin(ctx, st)
	if err != nil || boot == nil {
		t.Fatalf("bootstrap: %v %v", boot, err)
	}
	live, err := decision.NewLive(ctx, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	go live.Run(ctx, 50*time.Millisecond)
	cfg := config.Default()
	for _, m := range mutate {
		m(&cfg)
	}
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Open(ctx, st, master, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	policy := authn.DefaultPasswordPolicy()
	if cfg.Auth.BreachedPasswordsFile != "" {
		list, err := authn.OpenBreachedList(cfg.Auth.BreachedPasswordsFile)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { list.Close() })
		policy.BreachedList = list
	}
	pages, err := signin.New(signin.Options{Store: st, Live: live, Sealer: keys, Logger: log, AppID: api.AdminAPIAppID,
		MaxFailures: cfg.Auth.MaxFailedLogins, LockDuration: cfg.Auth.LockoutDuration.D(), PasswordPolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	auditLog, err := audit.Open(ctx, st, keys, audit.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Options{Store: st, Live: live, Logger: log, Registry: prometheus.NewRegistry(),
		HTTP: cfg.HTTP, Auth: cfg.Auth, Version: "test", SignIn: pages, PasswordPolicy: policy, Sealer: keys,
		AuditLog: auditLog, AuditWitnesses: cfg.Audit.Witnesses})
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, st: st, srv: srv, live: live, logs: logs, password: boot.Password, keys: keys}
	e.token, e.adminID = e.login(bootstrap.AdminUPN, boot.Password)
	return e
}

func (e *env) login(upn, password string) (token, id string) {
	e.t.Helper()
	var resp struct {
		AccessToken string `json:"access_token"`
		PrincipalID string `json:"principalId"`
	}
	r := e.call("", "POST", "/api/v1/login", map[string]string{"userPrincipalName": upn, "password": password})
	r.want(http.StatusOK)
	r.decode(&resp)
	return resp.AccessToken, resp.PrincipalID
}

// response is what a call returned.
type response struct {
	t      *testing.T
	status int
	header http.Header
	body   []byte
}

func (r response) want(status int) response {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d; want %d; body %s", r.status, status, r.body)
	}
	return r
}

func (r response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem asserts an error response and returns its code and target.
func (r response) problem(status int, code, target string) string {
	r.t.Helper()
	r.want(status)
	var p struct {
		Error struct {
			Code, Message, Target string
			InnerError            struct {
				RequestID string `json:"request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	r.decode(&p)
	if p.Error.Code != code || p.Error.Target != target {
		r.t.Fatalf("problem %+v; want code %q target %q", p.Error, code, target)
	}
	if p.Error.InnerError.RequestID == "" || p.Error.Message == "" {
		r.t.Fatalf("problem without request id or message: %s", r.body)
	}
	return p.Error.Message
}

func (r response) json() map[string]any {
	r.t.Helper()
	var m map[string]any
	r.decode(&m)
	return m
}

// call sends body (a string is sent as is; anything else as JSON).
func (e *env) call(token, method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{t: e.t, status: resp.StatusCode, header: resp.Header, body: b}
}

// admin calls as the bootstrap administrator.
func (e *env) admin(method, path string, body any, headers ...string) response {
	e.t.Helper()
	return e.call(e.token, method, path, body, headers...)
}

// createUser makes a user and returns its id.
func (e *env) createUser(upn string) string {
	e.t.Helper()
	var u struct{ ID string }
	e.admin("POST", "/api/v1/users", map[string]any{"userPrincipalName": upn, "displayName": upn}).want(http.StatusCreated).decode(&u)
	return u.ID
}

func (e *env) createGroup(name string, extra ...map[string]any) string {
	e.t.Helper()
	body := map[string]any{"displayName": name}
	for _, x := range extra {
		for k, v := range x {
			body[k] = v
		}
	}
	var g struct{ ID string }
	e.admin("POST", "/api/v1/groups", body).want(http.StatusCreated).decode(&g)
	return g.ID
}

func (e *env) addMember(groupID, memberID string) {
	e.t.Helper()
	e.admin("POST", "/api/v1/groups/"+groupID+"/members/$ref",
		map[string]string{"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/" + memberID}).want(http.StatusNoContent)
}

// auditActions lists the recorded actions, oldest first.
func (e *env) audit() []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}
