package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/audit"
)

// TestAuditLogOffline: with `verity up`, a user saves a checkpoint and the
// verifier key through the CLI, proves an event's inclusion against them,
// and after the node stops verifies the whole log offline; someone who
// edits an event in the database directly is caught, at its index.
func TestAuditLogOffline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "verity-data")
	env := baseEnv("VERITY_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials.json"))
	archive := filepath.Join(dir, "audit.jsonl")
	n := start(t, append(env, `VERITY_AUDIT_SINKS=[{"name":"archive","type":"file","path":"`+archive+`"}]`), "up", "--addr", "127.0.0.1:0", "--data", data)
	if _, stderr, err := run(t, env, n.password+"\n", "login", "--server", n.url, "--ca", n.caFile, "--user", n.user, "--password-stdin"); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	// A few changes, each an audit event.
	tok := n.login(n.user, n.password)
	for _, name := range []string{"Payroll", "Wiki", "Mail"} {
		if status, body := n.do(tok, "POST", "/api/v1/applications", `{"displayName": "`+name+`"}`); status != 201 {
			t.Fatalf("create application: %d %s", status, body)
		}
	}
	cpFile, keyFile := filepath.Join(dir, "checkpoint.txt"), filepath.Join(dir, "audit.key")
	if _, stderr, err := run(t, env, "", "audit", "checkpoint", "--new", "-o", cpFile); err != nil {
		t.Fatalf("audit checkpoint: %v\n%s", err, stderr)
	}
	if _, stderr, err := run(t, env, "", "audit", "key", "-o", keyFile); err != nil {
		t.Fatalf("audit key: %v\n%s", err, stderr)
	}
	note, _ := os.ReadFile(cpFile)
	key, _ := os.ReadFile(keyFile)
	cp, err := audit.ParseCheckpoint(note, string(key))
	if err != nil || cp.Size < 4 {
		t.Fatalf("saved checkpoint: %+v %v\n%s", cp, err, note)
	}
	out, stderr, err := run(t, env, "", "audit", "prove", "--index", "2", "--checkpoint", cpFile, "--key", "@"+keyFile)
	if err != nil || !strings.Contains(out, "leaf 2 is in the log") {
		t.Fatalf("audit prove: %v\n%s%s", err, out, stderr)
	}
	if _, _, err := run(t, env, "", "audit", "prove", "--index", "2", "--checkpoint", cpFile, "--key", "verity-audit-other+00000000+AQ=="); err == nil {
		t.Fatal("a proof checked with a wrong key passed")
	}
	// The file sink holds the log, in order, up to the checkpoint at least.
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(archive)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if uint64(len(lines)) >= cp.Size {
			for i, l := range lines {
				if !strings.HasPrefix(l, fmt.Sprintf(`{"leafIndex":%d,`, i)) {
					t.Fatalf("archive line %d: %s", i, l)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the archive holds %d events, the checkpoint %d", len(lines), cp.Size)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	verify := func() (string, error) {
		out, stderr, err := run(t, baseEnv(), "", "audit", "verify", "--data", data, "--checkpoint", cpFile, "--key", "@"+keyFile)
		return out + stderr, err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "the audit log verifies") {
		t.Fatalf("verify an intact log: %v\n%s", err, out)
	}
	db, err := sql.Open("sqlite", filepath.Join(data, "verity.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{`DROP TRIGGER audit_events_no_update`, `UPDATE audit_events SET actor = 'someone-else' WHERE leaf_index = 1`} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	out, err = verify()
	if err == nil || !strings.Contains(out, "NOT VERIFIED: leaf 1: modified") {
		t.Fatalf("verify a tampered log: %v\n%s", err, out)
	}
}
