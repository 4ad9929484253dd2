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
	// The log grows; a second checkpoint is consistent with the first.
	if status, body := n.do(tok, "POST", "/api/v1/applications", `{"displayName": "Later"}`); status != 201 {
		t.Fatalf("create application: %d %s", status, body)
	}
	cp2File := filepath.Join(dir, "checkpoint2.txt")
	if _, stderr, err := run(t, env, "", "audit", "checkpoint", "--new", "-o", cp2File); err != nil {
		t.Fatalf("audit checkpoint: %v\n%s", err, stderr)
	}
	out, stderr, err := run(t, env, "", "audit", "consistency", "--old", cpFile, "--new", cp2File, "--key", "@"+keyFile)
	if err != nil || !strings.Contains(out, "is a prefix of the log of") {
		t.Fatalf("audit consistency: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = run(t, env, "", "audit", "prove", "--index", "2", "--checkpoint", cpFile, "--key", "@"+keyFile)
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

// TestAuditWitness: a witness with its own key co-signs the latest
// checkpoint after checking that the log only grew; the checkpoint then
// carries its signature, which verify can require; a checkpoint a witness
// did not sign fails that requirement.
func TestAuditWitness(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "verity-data")
	wkey := filepath.Join(dir, "witness.key")
	vkey, stderr, err := run(t, baseEnv(), "", "audit", "witness-key", "--name", "witness.example.com", "-o", wkey)
	if err != nil {
		t.Fatalf("witness-key: %v\n%s", err, stderr)
	}
	vkey = strings.TrimSpace(vkey)
	env := baseEnv("VERITY_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials.json"))
	n := start(t, append(env, "VERITY_AUDIT_WITNESSES="+vkey), "up", "--addr", "127.0.0.1:0", "--data", data)
	if _, stderr, err := run(t, env, n.password+"\n", "login", "--server", n.url, "--ca", n.caFile, "--user", n.user, "--password-stdin"); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr)
	}
	logKey := filepath.Join(dir, "audit.key")
	if _, stderr, err := run(t, env, "", "audit", "key", "-o", logKey); err != nil {
		t.Fatalf("audit key: %v\n%s", err, stderr)
	}
	state := filepath.Join(dir, "witness-state.txt")
	witness := func() (string, error) {
		if _, _, err := run(t, env, "", "audit", "checkpoint", "--new"); err != nil {
			return "", err
		}
		out, stderr, err := run(t, env, "", "audit", "witness", "--log-key", "@"+logKey, "--key", wkey, "--state", state)
		return out + stderr, err
	}
	if out, err := witness(); err != nil || !strings.Contains(out, "co-signed the checkpoint") {
		t.Fatalf("first witness run: %v\n%s", err, out)
	}
	tok := n.login(n.user, n.password)
	if status, body := n.do(tok, "POST", "/api/v1/applications", `{"displayName": "Grown"}`); status != 201 {
		t.Fatalf("%d %s", status, body)
	}
	// The log grew: the witness checks consistency with what it signed.
	if out, err := witness(); err != nil || !strings.Contains(out, "co-signed the checkpoint") {
		t.Fatalf("second witness run: %v\n%s", err, out)
	}
	cpFile := filepath.Join(dir, "checkpoint.txt")
	if _, stderr, err := run(t, env, "", "audit", "checkpoint", "-o", cpFile); err != nil {
		t.Fatalf("checkpoint: %v\n%s", err, stderr)
	}
	note, _ := os.ReadFile(cpFile)
	if !strings.Contains(string(note), "— witness.example.com ") {
		t.Fatalf("the checkpoint carries no witness signature:\n%s", note)
	}
	// A note that is not the log's checkpoint is refused.
	if status, body := n.do(tok, "POST", "/api/v1/auditLogs/checkpoint/cosignature", "not a checkpoint"); status != 400 {
		t.Fatalf("a bogus cosignature: %d %s", status, body)
	}
	if err := n.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(t, baseEnv(), "", "audit", "verify", "--data", data, "--checkpoint", cpFile, "--key", "@"+logKey, "--witness-key", vkey)
	if err != nil || !strings.Contains(out, "the audit log verifies") {
		t.Fatalf("verify with the witness: %v\n%s%s", err, out, stderr)
	}
	other := filepath.Join(dir, "other.key")
	otherKey, _, _ := run(t, baseEnv(), "", "audit", "witness-key", "--name", "other.example.com", "-o", other)
	if _, stderr, err := run(t, baseEnv(), "", "audit", "verify", "--data", data, "--checkpoint", cpFile, "--key", "@"+logKey,
		"--witness-key", strings.TrimSpace(otherKey)); err == nil || !strings.Contains(stderr, "lacks the signature of witness other.example.com") {
		t.Fatalf("verify with a witness that did not sign: %v\n%s", err, stderr)
	}
}
