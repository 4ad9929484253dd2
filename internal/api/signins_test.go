package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestSignInLog(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
		for i, x := range []struct {
			user, app, result string
			code              int
		}{
			{"u1", "app-a", "failure", signin.CodeInvalidCredentials},
			{"u1", "app-a", "interrupted", signin.CodeMFARequired},
			{"u1", "app-a", "success", 0},
			{"u2", "app-b", "failure", signin.CodeBlockedByCA},
		} {
			ev := signin.Event{ID: "e" + string(rune('0'+i)), CreatedDateTime: at.Add(time.Duration(i) * time.Minute), UserID: x.user,
				UserPrincipalName: x.user + "@contoso.com", AppID: x.app, IPAddress: "203.0.113.9", ClientAppUsed: "Browser",
				Status: signin.Status{ErrorCode: x.code}, AppliedConditionalAccess: []signin.AppliedPolicy{}}
			b, _ := json.Marshal(ev)
			if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: ev.CreatedDateTime, Actor: x.user, Action: signin.AuditAction,
				Target: "/applications/" + x.app, Result: x.result, Details: b}); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(path string) []string {
			var page struct {
				Value []signin.Event `json:"value"`
				Next  string         `json:"@odata.nextLink"`
			}
			e.admin("GET", path, nil).want(http.StatusOK).decode(&page)
			var out []string
			for _, v := range page.Value {
				out = append(out, v.ID)
			}
			return out
		}
		for _, tc := range []struct {
			path string
			want string
		}{
			{"/api/v1/auditLogs/signIns?$top=4", "e3 e2 e1 e0"},
			{"/api/v1/auditLogs/signIns?userId=u1", "e2 e1 e0"},
			{"/api/v1/auditLogs/signIns?appId=app-b", "e3"},
			{"/api/v1/auditLogs/signIns?status=failure", "e3 e0"},
			{"/api/v1/auditLogs/signIns?userId=u1&status=success", "e2"},
			{"/api/v1/auditLogs/signIns?from=2026-11-01T09:01:00Z&to=2026-11-01T09:02:00Z", "e2 e1"},
			{"/api/v1/auditLogs/signIns?$top=1&$skiptoken=999999999", "e3"},
		} {
			if got := join(ids(tc.path)); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
			}
		}
		e.admin("GET", "/api/v1/auditLogs/signIns?status=maybe", nil).problem(http.StatusBadRequest, "InvalidRequest", "status")
		e.admin("GET", "/api/v1/auditLogs/signIns?from=yesterday", nil).problem(http.StatusBadRequest, "InvalidRequest", "from")

		// Export as JSON lines, paged by the Link header.
		r := e.admin("GET", "/api/v1/auditLogs/signIns?$top=3", nil, "Accept", "application/x-ndjson").want(http.StatusOK)
		if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" || r.header.Get("Link") == "" {
			t.Fatalf("ndjson: %q, link %q", ct, r.header.Get("Link"))
		}
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		n := 0
		for sc.Scan() {
			var ev signin.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.ID == "" {
				t.Fatalf("line %d: %v %q", n, err, sc.Text())
			}
			n++
		}
		if n != 3 {
			t.Fatalf("%d lines, want 3", n)
		}
		// Anonymous callers get nothing.
		e.call("", "GET", "/api/v1/auditLogs/signIns", nil).want(http.StatusUnauthorized)
	})
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestPasswordResetForcesChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storetest.OpenSQLite(t))
	id := e.createUser("reset@contoso.com")
	e.admin("POST", "/api/v1/users/"+id+"/password", map[string]any{"password": "a temporary passphrase", "forceChangePasswordNextSignIn": true}).want(http.StatusNoContent)
	r, err := e.st.GetRecord(context.Background(), "authMethods", id)
	if err != nil || !bytes.Contains(r.Body, []byte(`"mustChangePassword":true`)) {
		t.Fatalf("after a forced reset: %s %v", r.Body, err)
	}
	e.admin("POST", "/api/v1/users/"+id+"/password", map[string]any{"password": "another temporary one"}).want(http.StatusNoContent)
	r, _ = e.st.GetRecord(context.Background(), "authMethods", id)
	if bytes.Contains(r.Body, []byte(`"mustChangePassword":true`)) {
		t.Fatal("a reset without the flag kept the forced change")
	}
}

// TestBreachedPasswordsRefused: with auth.breachedPasswordsFile, a
// password that appears in the list cannot be set by an administrator,
// and others can.
func TestBreachedPasswordsRefused(t *testing.T) {
	t.Parallel()
	// The Have I Been Pwned download format: SHA1HEX:COUNT, sorted.
	var lines []string
	for _, pw := range []string{"password1234", "correct horse battery staple", "iloveyou12345"} {
		sum := sha1.Sum([]byte(pw))
		lines = append(lines, strings.ToUpper(hex.EncodeToString(sum[:]))+":42")
	}
	sort.Strings(lines)
	file := filepath.Join(t.TempDir(), "pwned.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\r\n")+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, storetest.OpenSQLite(t), func(c *config.Config) { c.Auth.BreachedPasswordsFile = file })
	id := e.createUser("pwned@contoso.com")
	msg := e.admin("POST", "/api/v1/users/"+id+"/password", map[string]any{"password": "correct horse battery staple"}).
		problem(http.StatusBadRequest, "InvalidRequest", "password")
	if !strings.Contains(msg, "breached") {
		t.Errorf("message %q", msg)
	}
	e.admin("POST", "/api/v1/users/"+id+"/password", map[string]any{"password": "a passphrase nobody leaked"}).want(http.StatusNoContent)
}
