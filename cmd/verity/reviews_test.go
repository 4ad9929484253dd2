package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/api"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/pim"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// TestReviewsCLI drives an access review with the verity binary against
// an API server on SQLite: an administrator creates it from a file (an
// unknown field is named by its path), the sweep starts it, the reviewer
// lists her pending item and denies it, the administrator stops and
// applies the instance, and the assignment is gone.
func TestReviewsCLI(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.OpenSQLite(t)
	const (
		root  = "00000000-0000-4000-8000-000000000001"
		rita  = "00000000-0000-4000-8000-000000000002"
		alice = "00000000-0000-4000-8000-000000000003"
		grant = "00000000-0000-4000-8000-000000000103"
	)
	var objs []store.Object
	for _, u := range []struct{ id, name string }{{root, "Root"}, {rita, "Rita"}, {alice, "Alice"}} {
		du := &directory.User{ID: u.id, UserPrincipalName: strings.ToLower(u.name) + "@contoso.com", DisplayName: u.name}
		du.Normalize()
		o, err := directory.Users.Object(du)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	for _, a := range []rbac.Assignment{{ID: "00000000-0000-4000-8000-000000000101", PrincipalID: root, RoleDefinitionID: "Owner", Scope: "/"},
		{ID: grant, PrincipalID: alice, RoleDefinitionID: "Contributor", Scope: "/apps/payroll"}} {
		a.Normalize()
		b, _ := json.Marshal(a)
		objs = append(objs, store.Object{Kind: rbac.Kind, ID: a.ID, Body: b})
	}
	if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	token := func(id string) string {
		secret, hash := authn.NewToken()
		if err := st.CreateToken(ctx, store.Token{Hash: hash, PrincipalID: id, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	live, err := decision.NewLive(ctx, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	go live.Run(ctx, 50*time.Millisecond)
	cfg := config.Default()
	srv := httptest.NewServer(api.New(api.Options{Store: st, Live: live, Logger: log, Registry: prometheus.NewRegistry(),
		HTTP: cfg.HTTP, Auth: cfg.Auth, Version: "test"}).Handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	as := func(id string) []string {
		return baseEnv("VERITY_CREDENTIALS_FILE="+filepath.Join(dir, id+".json"), "VERITY_SERVER="+srv.URL, "VERITY_TOKEN="+token(id))
	}
	admin, reviewer := as(root), as(rita)
	verity := func(env []string, args ...string) string {
		t.Helper()
		out, stderr, err := run(t, env, "", args...)
		if err != nil {
			t.Fatalf("verity %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return out
	}
	fails := func(env []string, want string, args ...string) {
		t.Helper()
		out, stderr, err := run(t, env, "", args...)
		if err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("verity %s: %v; want an error saying %q\n%s%s", strings.Join(args, " "), err, want, out, stderr)
		}
	}

	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	start := time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)
	fails(admin, "scope.resourceScop: unknown field", "reviews", "create", "--file", write("bad.json", `{"displayName": "Payroll", "scope": {"resourceScop": "/apps/payroll"}}`))
	fails(admin, "not JSON", "reviews", "create", "--file", write("broken.json", `{"displayName": `))
	def := write("def.json", fmt.Sprintf(`{"displayName": "Payroll access", "scope": {"resourceScope": "/apps/payroll"}, "reviewers": [%q],
		"settings": {"recurrence": {"type": "onetime", "startDate": %q}, "instanceDurationInDays": 7}}`, rita, start))
	fails(reviewer, "403 Forbidden", "reviews", "create", "--file", def)
	out := verity(admin, "reviews", "create", "--file", def)
	fields := strings.Fields(out)
	if len(fields) < 3 || !strings.HasPrefix(out, "access review ") || !strings.Contains(out, "NotStarted") {
		t.Fatalf("create said %q", out)
	}
	id := strings.TrimSuffix(fields[2], ":")
	if out := verity(admin, "reviews", "list"); !strings.Contains(out, id) || !strings.Contains(out, "Payroll access") {
		t.Fatalf("list:\n%s", out)
	}

	svc := pim.New(st)
	svc.Groups = func(id string) []string { return live.Current().Directory().TransitiveMemberOf(id) }
	if n, err := pim.NewReviews(svc, api.RemovalGuard).Sweep(ctx); err != nil || n.Started != 1 {
		t.Fatalf("sweep %+v %v", n, err)
	}
	instances := strings.Split(strings.TrimSpace(verity(reviewer, "reviews", "list", id)), "\n")
	if len(instances) != 2 || !strings.Contains(instances[1], "InProgress") {
		t.Fatalf("instances:\n%s", strings.Join(instances, "\n"))
	}
	instance := strings.Fields(instances[1])[0]
	pending := strings.Split(strings.TrimSpace(verity(reviewer, "reviews", "decisions")), "\n")
	if len(pending) != 2 || !strings.Contains(pending[1], "Alice") || !strings.Contains(pending[1], "Contributor") || !strings.Contains(pending[1], "NotReviewed") {
		t.Fatalf("pending decisions:\n%s", strings.Join(pending, "\n"))
	}
	item := strings.Fields(pending[1])[0]
	if got := verity(reviewer, "reviews", "decisions", instance); !strings.Contains(got, item) {
		t.Fatalf("the instance's pending decisions:\n%s", got)
	}
	fails(reviewer, "exactly one of", "reviews", "decide", item, "--approve", "--deny")
	fails(as(alice), "NotReviewer", "reviews", "decide", item, "--approve", "--justification", "mine")
	if got := verity(reviewer, "reviews", "decide", item, "--deny", "--justification", "moved to sales"); !strings.Contains(got, "Deny for Alice") {
		t.Fatalf("decide said %q", got)
	}
	if got := strings.TrimSpace(verity(reviewer, "reviews", "decisions")); strings.Contains(got, item) {
		t.Fatalf("a decided item is still pending:\n%s", got)
	}
	if got := verity(reviewer, "reviews", "decisions", "--all"); !strings.Contains(got, item) || !strings.Contains(got, "Deny") {
		t.Fatalf("decisions --all:\n%s", got)
	}
	fails(admin, "AccessReviewNotCompleted", "reviews", "apply", instance)
	fails(reviewer, "403 Forbidden", "reviews", "stop", instance)
	if got := verity(admin, "reviews", "stop", instance); !strings.Contains(got, "Completed") {
		t.Fatalf("stop said %q", got)
	}
	if _, err := st.Get(ctx, rbac.Kind, grant); err != nil {
		t.Fatalf("the assignment went before apply: %v", err)
	}
	if got := verity(admin, "reviews", "apply", instance); !strings.Contains(got, "Applied") || !strings.Contains(got, "1 applied, 0 failed") {
		t.Fatalf("apply said %q", got)
	}
	if _, err := st.Get(ctx, rbac.Kind, grant); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the denied assignment is still there: %v", err)
	}
	if got := verity(admin, "reviews", "delete", id); !strings.Contains(got, "deleted") {
		t.Fatalf("delete said %q", got)
	}
	fails(admin, "404 NotFound", "reviews", "list", id)
}
