package api_test

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// TestDirectoryAuditsFilters: the audit log's filters combine, and the
// cursor of a full page keeps them, page after page.
func TestDirectoryAuditsFilters(t *testing.T) {
	t.Parallel()
	engines(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		ctx := context.Background()
		at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
		for i := range 9 {
			result := []string{"success", "failure", "denied"}[i%3]
			if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: at.Add(time.Duration(i) * time.Minute), RequestID: "r" + string(rune('0'+i)),
				Actor: "bob", Action: "test.event", Target: "/t/" + string(rune('a'+i%2)), Result: result}); err != nil {
				t.Fatal(err)
			}
		}
		ids := func(path string) (string, string) {
			var page struct {
				Value []struct {
					RequestID string `json:"requestId"`
					LeafIndex int64  `json:"leafIndex"`
				} `json:"value"`
				Next string `json:"@odata.nextLink"`
			}
			e.admin("GET", path, nil).want(http.StatusOK).decode(&page)
			var out []string
			for _, v := range page.Value {
				if v.LeafIndex < 0 {
					t.Fatalf("%s: event %s without a leaf index", path, v.RequestID)
				}
				out = append(out, v.RequestID)
			}
			return strings.Join(out, " "), page.Next
		}
		for _, tc := range []struct{ path, want string }{
			{"/api/v1/auditLogs/directoryAudits?actor=bob", "r8 r7 r6 r5 r4 r3 r2 r1 r0"},
			{"/api/v1/auditLogs/directoryAudits?actor=bob&target=/t/a", "r8 r6 r4 r2 r0"},
			{"/api/v1/auditLogs/directoryAudits?action=test.event&result=denied", "r8 r5 r2"},
			{"/api/v1/auditLogs/directoryAudits?actor=bob&from=2026-11-02T09:02:00Z&to=2026-11-02T09:04:00Z", "r4 r3 r2"},
			{"/api/v1/auditLogs/directoryAudits?actor=bob&target=/t/b&result=failure", "r7 r1"},
		} {
			if got, _ := ids(tc.path); got != tc.want {
				t.Errorf("%s: %s, want %s", tc.path, got, tc.want)
			}
		}
		// Paging keeps the filters.
		var all []string
		path := "/api/v1/auditLogs/directoryAudits?actor=bob&target=/t/a&$top=2"
		for path != "" {
			got, next := ids(path)
			if got != "" {
				all = append(all, got)
			}
			path = next
		}
		if strings.Join(all, " ") != "r8 r6 r4 r2 r0" {
			t.Fatalf("paged: %q", all)
		}
		e.admin("GET", "/api/v1/auditLogs/directoryAudits?result=maybe", nil).problem(http.StatusBadRequest, "InvalidRequest", "result")
		e.admin("GET", "/api/v1/auditLogs/directoryAudits?to=soon", nil).problem(http.StatusBadRequest, "InvalidRequest", "to")
	})
}

// TestChangesFailWithoutTheirRecord: when the audit log cannot be written,
// an administrator's change is refused and not made; once it can, the
// change and its record are made together.
func TestChangesFailWithoutTheirRecord(t *testing.T) {
	t.Parallel()
	path := storetest.SQLitePath(t)
	e := newEnv(t, storetest.OpenDSN(t, path))
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bob := e.createUser("bob@contoso.com")
	var before int64
	if err := db.QueryRow(`SELECT updated_at FROM credentials WHERE principal_id = ?`, bob).Scan(&before); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	// As a full disk or a broken audit table would.
	if _, err := db.Exec(`CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit table broken'); END`); err != nil {
		t.Fatal(err)
	}
	r := e.admin("POST", "/api/v1/users", map[string]any{"userPrincipalName": "unrecorded@contoso.com", "displayName": "Unrecorded"})
	if r.status < 500 {
		t.Fatalf("a change without its record: %d %s", r.status, r.body)
	}
	// A password, which is not a directory change, too.
	if r := e.admin("POST", "/api/v1/users/"+bob+"/password", map[string]string{"password": "an unrecorded passphrase"}); r.status < 500 {
		t.Fatalf("a password set without its record: %d %s", r.status, r.body)
	}
	var after int64
	if err := db.QueryRow(`SELECT updated_at FROM credentials WHERE principal_id = ?`, bob).Scan(&after); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}
	if after != before {
		t.Fatal("the password was set without its record")
	}
	if _, err := db.Exec(`DROP TRIGGER audit_broken`); err != nil {
		t.Fatal(err)
	}
	e.admin("GET", "/api/v1/users/unrecorded@contoso.com", nil).want(http.StatusNotFound)
	id := e.createUser("recorded@contoso.com")
	var found bool
	for _, ev := range e.audit() {
		found = found || (ev.Action == "users.create" && strings.Contains(string(ev.Details), id))
	}
	if !found {
		t.Fatal("the change's record is missing")
	}
}

// TestAuditLogEndpoints: the log's head, checkpoints and proofs, and what
// each says of bad input.
func TestAuditLogEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, storeSQLite(t))
	for i := range 5 {
		e.createUser("u" + string(rune('0'+i)) + "@contoso.com")
	}
	var info struct {
		Origin, VerifierKey string
		TreeSize            uint64
	}
	e.admin("GET", "/api/v1/auditLogs/log", nil).want(http.StatusOK).decode(&info)
	if info.TreeSize < 6 || !strings.HasPrefix(info.VerifierKey, info.Origin+"+") {
		t.Fatalf("log %+v", info)
	}
	note := e.admin("POST", "/api/v1/auditLogs/checkpoint", nil).want(http.StatusCreated).body
	cp, err := audit.ParseCheckpoint(note, info.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.admin("GET", "/api/v1/auditLogs/checkpoint?treeSize="+strconv.FormatUint(cp.Size, 10), nil).want(http.StatusOK).body; string(got) != string(note) {
		t.Fatalf("checkpoint by size: %s", got)
	}
	var incl struct {
		LeafHash []byte   `json:"leafHash"`
		Hashes   [][]byte `json:"hashes"`
		Leaf     []byte   `json:"leaf"`
	}
	e.admin("GET", "/api/v1/auditLogs/proofs/inclusion?index=3&treeSize="+strconv.FormatUint(cp.Size, 10), nil).want(http.StatusOK).decode(&incl)
	if err := audit.VerifyInclusion(3, cp.Size, audit.LeafHash(incl.Leaf), incl.Hashes, cp.Root); err != nil {
		t.Fatalf("inclusion: %v", err)
	}
	for _, c := range []struct {
		path, target string
		status       int
	}{
		{"/api/v1/auditLogs/proofs/inclusion", "index", http.StatusBadRequest},
		{"/api/v1/auditLogs/proofs/inclusion?index=-1", "index", http.StatusBadRequest},
		{"/api/v1/auditLogs/proofs/inclusion?index=abc", "index", http.StatusBadRequest},
		{"/api/v1/auditLogs/proofs/inclusion?index=999999", "index", http.StatusNotFound},
		{"/api/v1/auditLogs/proofs/inclusion?index=1&treeSize=99999999", "index", http.StatusNotFound},
		{"/api/v1/auditLogs/proofs/consistency?from=0", "from", http.StatusBadRequest},
		{"/api/v1/auditLogs/proofs/consistency?from=5&to=3", "from", http.StatusBadRequest},
		{"/api/v1/auditLogs/proofs/consistency?from=1&to=99999999", "from", http.StatusBadRequest},
		{"/api/v1/auditLogs/checkpoint?treeSize=zero", "treeSize", http.StatusBadRequest},
	} {
		r := e.admin("GET", c.path, nil)
		if r.status != c.status || !strings.Contains(string(r.body), `"target":"`+c.target+`"`) {
			t.Errorf("%s: %d %s, want %d at %s", c.path, r.status, r.body, c.status, c.target)
		}
	}
	e.admin("GET", "/api/v1/auditLogs/checkpoint?treeSize=3", nil).want(http.StatusNotFound)
	// No witness configured: nothing to co-sign.
	e.call(e.token, "POST", "/api/v1/auditLogs/checkpoint/cosignature", nil).want(http.StatusConflict)
	// Anonymous callers read nothing.
	e.call("", "GET", "/api/v1/auditLogs/log", nil).want(http.StatusUnauthorized)
}
