package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

var engines = []struct {
	name  string
	fresh func(testing.TB) string
}{
	{"sqlite", storetest.SQLitePath},
	{"postgres", storetest.PostgresDSN},
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openLog opens a store on dsn and the audit log on it.
func openLog(t testing.TB, dsn string) (store.Store, *audit.Log) {
	t.Helper()
	st := storetest.OpenDSN(t, dsn)
	mk := make([]byte, 32)
	_, _ = rand.Read(mk)
	keys, err := keyring.Open(ctxFor(t), st, mk, keyring.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctxFor(t), st, keys, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st, l
}

// event is the i-th test event, different from every other.
func event(i int) store.AuditEvent {
	return store.AuditEvent{Time: time.Unix(1_790_000_000, int64(i)*1000), RequestID: fmt.Sprintf("req-%d", i), Actor: "u" + fmt.Sprint(i%7),
		Action: "proxy.decision", Target: "/apps/a", Result: "success", Details: []byte(fmt.Sprintf(`{"n":%d,"path":"/a?<b>&c"}`, i))}
}

// appendEvents appends n events from first on, queued and waited for,
// from several goroutines, as a busy node does.
func appendEvents(t testing.TB, st store.Store, first, n int) {
	t.Helper()
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := first + g; i < first+n; i += 4 {
				var err error
				if i%3 == 0 {
					_, err = st.AppendAudit(ctx, event(i))
				} else {
					err = st.AppendAuditAsync(ctx, event(i))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitLeaves(t, st, uint64(first+n))
}

// waitLeaves waits until st's tree holds want leaves (queued events are
// written a few milliseconds later).
func waitLeaves(t testing.TB, st store.Store, want uint64) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		head, err := st.AuditHead(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		if head.Size == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tree holds %d leaves, want %d", head.Size, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mth is RFC 6962's Merkle tree hash, straight from its definition: the
// reference the stored tree is held to.
func mth(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		h := sha256.Sum256(append([]byte{0}, leaves[0]...))
		return h[:]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	h := sha256.Sum256(append(append([]byte{1}, mth(leaves[:k])...), mth(leaves[k:])...))
	return h[:]
}

// allLeaves reads every event in leaf order and returns their leaf bytes.
func allLeaves(t testing.TB, st store.Store) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		evs, err := st.AuditLeaves(ctxFor(t), uint64(len(out)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			return out
		}
		for _, e := range evs {
			if e.Index != int64(len(out)) {
				t.Fatalf("leaf %d has index %d", len(out), e.Index)
			}
			out = append(out, store.AuditLeaf(&e))
		}
	}
}

// TestTreeAndProofs: events appended concurrently (waited for and queued)
// get leaf indices without gaps; the stored root is RFC 6962's hash of
// their leaves; inclusion proofs of every leaf and consistency proofs
// between sizes verify, across tile boundaries; checkpoints verify with
// the log's key and not with another.
func TestTreeAndProofs(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			st, l := openLog(t, e.fresh(t))
			appendEvents(t, st, 0, 700)
			leaves := allLeaves(t, st)
			if len(leaves) != 700 {
				t.Fatalf("%d leaves", len(leaves))
			}
			head, err := st.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(head.Root, mth(leaves)) {
				t.Fatal("the stored root is not the Merkle tree hash of the leaves")
			}
			for _, size := range []uint64{1, 2, 3, 255, 256, 257, 511, 512, 513, 699, 700} {
				root, err := audit.RootAt(ctx, st, size)
				if err != nil || !bytes.Equal(root, mth(leaves[:size])) {
					t.Fatalf("root at %d: %v", size, err)
				}
				for _, idx := range []uint64{0, size / 2, size - 1} {
					p, err := l.Inclusion(ctx, idx, size)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(p.Leaf, leaves[idx]) {
						t.Fatalf("leaf %d: the proof's leaf differs", idx)
					}
					if err := audit.VerifyInclusion(idx, size, p.LeafHash, p.Hashes, root); err != nil {
						t.Fatalf("inclusion of %d in %d: %v", idx, size, err)
					}
					if err := audit.VerifyInclusion(idx, size, audit.LeafHash([]byte("forged")), p.Hashes, root); err == nil {
						t.Fatalf("inclusion of %d in %d: a forged leaf verified", idx, size)
					}
				}
				for _, from := range []uint64{1, size / 3, size} {
					if from == 0 {
						continue
					}
					to, hashes, err := l.Consistency(ctx, from, 700)
					if err != nil {
						t.Fatal(err)
					}
					if err := audit.VerifyConsistency(from, to, hashes, mth(leaves[:from]), head.Root); err != nil {
						t.Fatalf("consistency %d→%d: %v", from, to, err)
					}
				}
			}

			cp, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := audit.ParseCheckpoint([]byte(cp.Note), l.VerifierKey())
			if err != nil || parsed.Size != 700 || !bytes.Equal(parsed.Root, head.Root) || parsed.Origin != l.Origin() || parsed.Time.IsZero() {
				t.Fatalf("checkpoint %+v: %v\n%s", parsed, err, cp.Note)
			}
			if again, err := l.Checkpoint(ctx); err != nil || again.Note != cp.Note {
				t.Fatalf("a second checkpoint of the same tree: %v", err)
			}
			_, other := openLog(t, e.fresh(t))
			if _, err := audit.ParseCheckpoint([]byte(cp.Note), other.VerifierKey()); err == nil {
				t.Fatal("a checkpoint verified with another log's key")
			}
			forged := strings.Replace(cp.Note, "\n700\n", "\n699\n", 1)
			if _, err := audit.ParseCheckpoint([]byte(forged), l.VerifierKey()); err == nil {
				t.Fatal("an altered checkpoint verified")
			}
			rep, err := audit.Verify(ctx, st, l.VerifierKey(), audit.VerifyOptions{Trusted: []byte(cp.Note)})
			if err != nil || !rep.OK() || rep.Leaves != 700 || rep.Checkpoints != 2 {
				t.Fatalf("verify an intact log: %+v %v", rep, err)
			}
		})
	}
}

// rawDB opens the database behind dsn directly, as someone who reached it
// would, and runs statements, the append-only triggers and the unique
// leaf index dropped first.
func tamper(t *testing.T, engine, dsn string, stmts ...string) {
	t.Helper()
	ctx := ctxFor(t)
	if engine == "sqlite" {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		pre := []string{`DROP TRIGGER IF EXISTS audit_events_no_update`, `DROP TRIGGER IF EXISTS audit_events_no_delete`, `DROP INDEX IF EXISTS audit_events_leaf`}
		for _, s := range append(pre, stmts...) {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		return
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	pre := []string{`ALTER TABLE audit_events DISABLE TRIGGER USER`, `DROP INDEX IF EXISTS audit_events_leaf`}
	for _, s := range append(pre, stmts...) {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestTamperIsLocated tampers with a log of 300 events directly in each
// database and expects verify to name the first index that changed and
// how.
func TestTamperIsLocated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		stmts []string
		index uint64
		kind  string
	}{
		{"modified", []string{`UPDATE audit_events SET details = '{"n":123,"path":"/other"}' WHERE leaf_index = 123`}, 123, audit.Modified},
		{"actor changed", []string{`UPDATE audit_events SET actor = 'admin' WHERE leaf_index = 7`}, 7, audit.Modified},
		{"deleted", []string{`DELETE FROM audit_events WHERE leaf_index = 77`}, 77, audit.Deleted},
		{"deleted and closed up", []string{`DELETE FROM audit_events WHERE leaf_index = 77`,
			`UPDATE audit_events SET leaf_index = leaf_index - 1 WHERE leaf_index > 77`}, 77, audit.Deleted},
		{"swapped", []string{`UPDATE audit_events SET leaf_index = -1 WHERE leaf_index = 40`,
			`UPDATE audit_events SET leaf_index = 40 WHERE leaf_index = 41`, `UPDATE audit_events SET leaf_index = 41 WHERE leaf_index = -1`}, 40, audit.Reordered},
		{"inserted", []string{`UPDATE audit_events SET leaf_index = leaf_index + 1 WHERE leaf_index >= 200`,
			`INSERT INTO audit_events (leaf_index, event_time, request_id, actor, action, target, result, status, details)
				VALUES (200, 1790000000000000, 'x', 'mallory', 'users.delete', '/users/x', 'success', 200, '{}')`}, 200, audit.Inserted},
		{"appended", []string{`INSERT INTO audit_events (leaf_index, event_time, request_id, actor, action, target, result, status, details)
				VALUES (300, 1790000000000000, 'x', 'mallory', 'users.delete', '/users/x', 'success', 200, '{}')`}, 300, audit.Inserted},
		{"truncated", []string{`DELETE FROM audit_events WHERE leaf_index >= 290`}, 290, audit.Deleted},
		{"tree hash altered", []string{`UPDATE audit_tiles SET hashes = ` + zeroFirstHash + ` WHERE level = 0 AND idx = 1`}, 256, audit.HashAltered},
		{"events and tree rewritten", []string{`UPDATE audit_events SET actor = 'nobody' WHERE leaf_index = 150`,
			`DELETE FROM audit_tiles`, `UPDATE audit_tree SET size = 0, compact = ` + emptyBlob + `, earlier = 300`}, 100, audit.TreeRewritten},
	}
	for _, e := range engines {
		for _, c := range cases {
			t.Run(e.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				ctx := ctxFor(t)
				dsn := e.fresh(t)
				st, l := openLog(t, dsn)
				appendEvents(t, st, 0, 100)
				if _, err := l.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
				appendEvents(t, st, 100, 100)
				if _, err := l.Checkpoint(ctx); err != nil {
					t.Fatal(err)
				}
				appendEvents(t, st, 200, 100)
				saved, err := l.Checkpoint(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if rep, err := audit.Verify(ctx, st, l.VerifierKey(), audit.VerifyOptions{Trusted: []byte(saved.Note)}); err != nil || !rep.OK() {
					t.Fatalf("before tampering: %+v %v", rep, err)
				}
				stmts := c.stmts
				if e.name == "postgres" {
					stmts = pgDialect(stmts)
				}
				tamper(t, e.name, dsn, stmts...)
				// A node opening the database afterwards (which hashes
				// events missing from the tree into it) changes nothing.
				st2 := storetest.OpenDSN(t, dsn)
				rep, err := audit.Verify(ctx, st2, "", audit.VerifyOptions{VerifierKey: l.VerifierKey(), Trusted: []byte(saved.Note)})
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() || rep.First.Index != c.index || rep.First.Kind != c.kind {
					t.Fatalf("verify found %+v, want %s at %d", rep.First, c.kind, c.index)
				}
			})
		}
	}
}

// SQL of the tampering that differs between the engines.
const (
	zeroFirstHash = `CAST(zeroblob(32) || substr(hashes, 33) AS BLOB)`
	emptyBlob     = `x''`
)

func pgDialect(stmts []string) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		s = strings.ReplaceAll(s, zeroFirstHash, `'\x0000000000000000000000000000000000000000000000000000000000000000'::bytea || substr(hashes, 33)`)
		s = strings.ReplaceAll(s, emptyBlob, `'\x'::bytea`)
		out[i] = s
	}
	return out
}

// TestEarlierEventsAreHashedOnOpen: events a database held before the
// audit tree existed (audit_tree.earlier) are hashed into the tree when a
// node opens it, giving the same tree as when they were appended.
func TestEarlierEventsAreHashedOnOpen(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			dsn := e.fresh(t)
			st := storetest.OpenDSN(t, dsn)
			appendEvents(t, st, 0, 600)
			before, err := st.AuditHead(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// As the migration leaves a database that had 600 events.
			stmts := []string{`DELETE FROM audit_tiles`, `UPDATE audit_tree SET size = 0, compact = ` + emptyBlob + `, earlier = 600`}
			if e.name == "postgres" {
				stmts = pgDialect(stmts)
			}
			tamper(t, e.name, dsn, stmts...)
			st2 := storetest.OpenDSN(t, dsn)
			after, err := st2.AuditHead(ctx)
			if err != nil || after.Size != 600 || !bytes.Equal(after.Root, before.Root) {
				t.Fatalf("after opening: %d leaves (%v), root equal %v", after.Size, err, bytes.Equal(after.Root, before.Root))
			}
			appendEvents(t, st2, 600, 10)
			if rep, err := audit.Verify(ctx, st2, "", audit.VerifyOptions{}); err != nil || !rep.OK() || rep.Leaves != 610 {
				t.Fatalf("verify: %+v %v", rep, err)
			}
		})
	}
}

// TestRetention: events older than the retention are pruned, oldest
// first, never one a shared sink has not delivered; the pruning is itself
// logged; the log still verifies against a checkpoint made before, and
// proofs of later events still hold. Raising the pruned mark to delete
// more is caught; a young event cannot be deleted at all.
func TestRetention(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			dsn := e.fresh(t)
			st, l := openLog(t, dsn)
			// One after another, so that leaf i is event i and leaf order
			// is time order.
			for i := range 300 {
				if _, err := st.AppendAudit(ctx, event(i)); err != nil {
					t.Fatal(err)
				}
			}
			saved, err := l.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			retention := 30 * 24 * time.Hour
			// Now is the retention after event 100: events 0..99 are older.
			now := event(100).Time.Add(retention)

			// A sink that has delivered only 40 events holds pruning there.
			if _, err := st.CreateRecord(ctx, store.Record{Kind: "auditSinkCursor", ID: "siem", Body: []byte(`{"next":40}`)}); err != nil {
				t.Fatal(err)
			}
			if n, err := audit.Prune(ctx, st, retention, now); err != nil || n != 40 {
				t.Fatalf("pruned %d (%v), want 40", n, err)
			}
			if err := st.DeleteRecord(ctx, "auditSinkCursor", "siem"); err != nil {
				t.Fatal(err)
			}
			if n, err := audit.Prune(ctx, st, retention, now); err != nil || n != 60 {
				t.Fatalf("pruned %d (%v), want 60 more", n, err)
			}
			head, err := st.AuditHead(ctx)
			if err != nil || head.Pruned != 100 || head.Size != 302 {
				t.Fatalf("head %+v %v", head, err)
			}
			evs, err := st.AuditLeaves(ctx, 0, 1)
			if err != nil || len(evs) != 1 || evs[0].Index != 100 {
				t.Fatalf("first event left: %+v %v", evs, err)
			}
			rep, err := audit.Verify(ctx, st, l.VerifierKey(), audit.VerifyOptions{Trusted: []byte(saved.Note)})
			if err != nil || !rep.OK() || rep.Pruned != 100 || rep.Leaves != 302 {
				t.Fatalf("verify after pruning: %+v %v", rep, err)
			}
			if _, err := l.Inclusion(ctx, 50, 300); err == nil {
				t.Fatal("a proof of a pruned event")
			}
			p, err := l.Inclusion(ctx, 150, 300)
			if err != nil {
				t.Fatal(err)
			}
			parsed, _ := audit.ParseCheckpoint([]byte(saved.Note), l.VerifierKey())
			if err := audit.VerifyInclusion(150, 300, p.LeafHash, p.Hashes, parsed.Root); err != nil {
				t.Fatalf("inclusion after pruning: %v", err)
			}

			// A young event cannot be deleted, even directly in the
			// database with the triggers in place.
			if err := deleteLeaf(ctx, e.name, dsn, 150); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Fatalf("deleting a young event: %v", err)
			}
			// Moving the pruned mark and deleting more is caught.
			stmts := []string{`UPDATE audit_tree SET pruned = 200`, `DELETE FROM audit_events WHERE leaf_index < 200`}
			tamper(t, e.name, dsn, stmts...)
			rep, err = audit.Verify(ctx, st, l.VerifierKey(), audit.VerifyOptions{Trusted: []byte(saved.Note)})
			if err != nil || rep.OK() || rep.First.Index != 100 || rep.First.Kind != audit.Deleted {
				t.Fatalf("verify after an unrecorded pruning: %+v %v", rep.First, err)
			}
		})
	}
}

// deleteLeaf deletes one event directly, with the database's triggers as
// they are.
func deleteLeaf(ctx context.Context, engine, dsn string, index int) error {
	if engine == "sqlite" {
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		_, err = db.ExecContext(ctx, `DELETE FROM audit_events WHERE leaf_index = ?`, index)
		return err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `DELETE FROM audit_events WHERE leaf_index = $1`, index)
	return err
}

// TestTwoNodesAppend: two nodes append to one log in turns and together;
// each node's cache of the tree's edge goes stale when the other appends,
// and the tree stays RFC 6962's tree of the events.
func TestTwoNodesAppend(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			dsn := e.fresh(t)
			a, b := storetest.OpenDSN(t, dsn), storetest.OpenDSN(t, dsn)
			n := 0
			for round := range 6 {
				st := a
				if round%2 == 1 {
					st = b
				}
				appendEvents(t, st, n, 37+round*50)
				n += 37 + round*50
			}
			var wg sync.WaitGroup
			for i, st := range []store.Store{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 150 {
						if err := st.AppendAuditAsync(ctx, event(10_000*(i+1)+k)); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			n += 300
			waitLeaves(t, a, uint64(n))
			head, _ := b.AuditHead(ctx)
			if !bytes.Equal(head.Root, mth(allLeaves(t, a))) {
				t.Fatal("the stored root is not the Merkle tree hash of the leaves")
			}
			if rep, err := audit.Verify(ctx, a, "", audit.VerifyOptions{}); err != nil || !rep.OK() {
				t.Fatalf("verify: %+v %v", rep.First, err)
			}
		})
	}
}
