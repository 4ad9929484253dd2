package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// RunConformance runs the store test suite. open must return a store on a
// new, empty database for each new test, and another store on the same
// database when called again with the same test (a second node); stores
// must be configured as Config does and closed when the test ends. Opener
// builds such a function.
func RunConformance(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store)
	}{
		{"CRUD", testCRUD},
		{"Keys", testKeys},
		{"ConflictKeepsTransactionUsable", testConflictInTx},
		{"IfRevision", testIfRevision},
		{"Rollback", testRollback},
		{"RevisionSharedAndMonotonic", testRevision},
		{"EmptyUpdate", testEmptyUpdate},
		{"Changes", testChanges},
		{"Compaction", testCompaction},
		{"WatchSameStore", testWatchLocal},
		{"WatchOtherNode", testWatchOtherNode},
		{"WatchClosesWithContext", testWatchClose},
		{"ViewConsistent", testView},
		{"ListPaging", testList},
		{"Tokens", testTokens},
		{"Credentials", testCredentials},
		{"Records", testRecords},
		{"Audit", testAudit},
		{"AuditAsync", testAuditAsync},
		{"ConcurrentWriters", testConcurrentWriters},
		{"StoreReadsInsideUpdates", testReadsInsideUpdates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// update runs fn in an Update and fails the test on error.
func update(t *testing.T, s store.Store, fn func(ctx context.Context, tx store.Tx) error) int64 {
	t.Helper()
	rev, err := s.Update(testCtx(t), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rev
}

func put(t *testing.T, s store.Store, objs ...store.Object) int64 {
	t.Helper()
	return update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func mustGet(t *testing.T, r store.Reader, kind, id string) store.Object {
	t.Helper()
	o, err := r.Get(testCtx(t), kind, id)
	if err != nil {
		t.Fatalf("Get %s %s: %v", kind, id, err)
	}
	return o
}

func testCRUD(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	// Key order and spacing must survive: callers hash canonical bytes.
	body := []byte(`{"z":1,"a":{"y":[1,2],"b":"é"}}`)
	before := time.Now().Add(-time.Second)
	rev := update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Create(ctx, store.Object{Kind: "user", ID: "u1", Key: "alice@example.com", ManagedBy: "apply", Body: body})
	})
	got := mustGet(t, s, "user", "u1")
	if !bytes.Equal(got.Body, body) || got.Key != "alice@example.com" || got.ManagedBy != "apply" || got.Revision != rev {
		t.Fatalf("Get after Create = %+v (body %s), want body %s at revision %d", got, got.Body, body, rev)
	}
	if got.CreatedAt.Before(before) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("times after Create: created %v updated %v", got.CreatedAt, got.UpdatedAt)
	}

	time.Sleep(2 * time.Millisecond)
	rev2 := put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{"v":2}`)})
	got2 := mustGet(t, s, "user", "u1")
	if string(got2.Body) != `{"v":2}` || got2.Key != "" || got2.ManagedBy != "" || got2.Revision != rev2 {
		t.Fatalf("Get after Put = %+v", got2)
	}
	if !got2.CreatedAt.Equal(got.CreatedAt) || !got2.UpdatedAt.After(got.UpdatedAt) {
		t.Fatalf("Put must keep CreatedAt and advance UpdatedAt: before %+v after %+v", got, got2)
	}
	if _, err := s.GetByKey(ctx, "user", "alice@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetByKey of a key dropped by Put: %v, want ErrNotFound", err)
	}

	rev3 := update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Update(ctx, store.Object{Kind: "user", ID: "u1", Body: []byte(`{"v":3}`)}, 0)
	})
	if got := mustGet(t, s, "user", "u1"); string(got.Body) != `{"v":3}` || got.Revision != rev3 {
		t.Fatalf("Get after Update = %+v", got)
	}

	_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Update(ctx, store.Object{Kind: "user", ID: "nobody", Body: []byte(`{}`)}, 0)
	})
	wantErr(t, "Update of a missing object", err, store.ErrNotFound)
	_, err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Delete(ctx, "user", "nobody") })
	wantErr(t, "Delete of a missing object", err, store.ErrNotFound)
	_, err = s.Get(ctx, "group", "u1")
	wantErr(t, "Get of another kind", err, store.ErrNotFound)

	update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Delete(ctx, "user", "u1") })
	_, err = s.Get(ctx, "user", "u1")
	wantErr(t, "Get after Delete", err, store.ErrNotFound)

	_, err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, store.Object{Kind: "user", Body: []byte(`{}`)})
	})
	if err == nil {
		t.Fatal("Put without an ID succeeded")
	}
}

func testKeys(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	create := func(o store.Object) error {
		_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error { return tx.Create(ctx, o) })
		return err
	}
	if err := create(store.Object{Kind: "user", ID: "u1", Key: "alice", Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetByKey(ctx, "user", "alice"); err != nil || got.ID != "u1" {
		t.Fatalf("GetByKey = %+v, %v", got, err)
	}
	wantErr(t, "Create with a taken key", create(store.Object{Kind: "user", ID: "u2", Key: "alice", Body: []byte(`{}`)}), store.ErrConflict)
	wantErr(t, "Create with a taken id", create(store.Object{Kind: "user", ID: "u1", Body: []byte(`{}`)}), store.ErrConflict)
	// Keys are unique per kind only, and empty keys never collide.
	for _, o := range []store.Object{
		{Kind: "app", ID: "a1", Key: "alice", Body: []byte(`{}`)},
		{Kind: "user", ID: "u2", Body: []byte(`{}`)},
		{Kind: "user", ID: "u3", Body: []byte(`{}`)},
	} {
		if err := create(o); err != nil {
			t.Fatalf("Create %+v: %v", o, err)
		}
	}
	// Keys compare byte for byte.
	if err := create(store.Object{Kind: "user", ID: "u4", Key: "Alice", Body: []byte(`{}`)}); err != nil {
		t.Fatalf("Create with a key differing in case: %v", err)
	}
	_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, store.Object{Kind: "user", ID: "u2", Key: "alice", Body: []byte(`{}`)})
	})
	wantErr(t, "Put with a key held by another object", err, store.ErrConflict)
	_, err = s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Update(ctx, store.Object{Kind: "user", ID: "u3", Key: "alice", Body: []byte(`{}`)}, 0)
	})
	wantErr(t, "Update to a key held by another object", err, store.ErrConflict)

	// Moving a key: free it and take it in one Update.
	put(t, s, store.Object{Kind: "user", ID: "u1", Key: "alice-old", Body: []byte(`{}`)},
		store.Object{Kind: "user", ID: "u2", Key: "alice", Body: []byte(`{}`)})
	if got, err := s.GetByKey(ctx, "user", "alice"); err != nil || got.ID != "u2" {
		t.Fatalf("GetByKey after moving the key = %+v, %v", got, err)
	}
	_, err = s.GetByKey(ctx, "user", "")
	wantErr(t, "GetByKey with an empty key", err, store.ErrNotFound)
}

// testConflictInTx checks that a conflict is an answer, not a broken
// transaction: fn may handle it and go on writing (PostgreSQL aborts a
// transaction on a raised unique violation).
func testConflictInTx(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	put(t, s, store.Object{Kind: "user", ID: "u1", Key: "alice", Body: []byte(`{}`)})
	rev := update(t, s, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Create(ctx, store.Object{Kind: "user", ID: "u2", Key: "alice", Body: []byte(`{}`)}); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("create with taken key: %v, want ErrConflict", err)
		}
		if err := tx.Put(ctx, store.Object{Kind: "user", ID: "u3", Key: "alice", Body: []byte(`{}`)}); !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("put with taken key: %v, want ErrConflict", err)
		}
		return tx.Create(ctx, store.Object{Kind: "user", ID: "u2", Key: "alice2", Body: []byte(`{}`)})
	})
	if got := mustGet(t, s, "user", "u2"); got.Key != "alice2" || got.Revision != rev {
		t.Fatalf("object written after a handled conflict = %+v", got)
	}
}

func testIfRevision(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	r1 := put(t, s, store.Object{Kind: "policy", ID: "p1", Body: []byte(`{"v":1}`)})
	r2 := update(t, s, func(ctx context.Context, tx store.Tx) error {
		return tx.Update(ctx, store.Object{Kind: "policy", ID: "p1", Body: []byte(`{"v":2}`)}, r1)
	})
	_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		return tx.Update(ctx, store.Object{Kind: "policy", ID: "p1", Body: []byte(`{"v":"stale"}`)}, r1)
	})
	wantErr(t, "Update at a stale revision", err, store.ErrConflict)
	if got := mustGet(t, s, "policy", "p1"); string(got.Body) != `{"v":2}` || got.Revision != r2 {
		t.Fatalf("after a refused Update: %+v", got)
	}
	if rev, _ := s.Revision(ctx); rev != r2 {
		t.Fatalf("revision after a refused Update = %d, want %d", rev, r2)
	}
}

func testRollback(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	r1 := put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{"v":1}`)})
	boom := errors.New("boom")
	_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, w := range []func() error{
			func() error { return tx.Put(ctx, store.Object{Kind: "user", ID: "u1", Body: []byte(`{"v":2}`)}) },
			func() error { return tx.Create(ctx, store.Object{Kind: "user", ID: "u2", Body: []byte(`{}`)}) },
			func() error { return tx.Delete(ctx, "user", "u1") },
		} {
			if err := w(); err != nil {
				return err
			}
		}
		if _, err := tx.Get(ctx, "user", "u1"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("tx does not see its own delete: %v", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if got := mustGet(t, s, "user", "u1"); string(got.Body) != `{"v":1}` || got.Revision != r1 {
		t.Fatalf("after rollback u1 = %+v", got)
	}
	_, err = s.Get(ctx, "user", "u2")
	wantErr(t, "Get of an object created by a rolled back Update", err, store.ErrNotFound)
	if rev, _ := s.Revision(ctx); rev != r1 {
		t.Fatalf("revision after rollback = %d, want %d", rev, r1)
	}
	if ch, err := s.Changes(ctx, r1, 0); err != nil || len(ch) != 0 {
		t.Fatalf("changes after rollback = %v, %v", ch, err)
	}
	if r2 := put(t, s, store.Object{Kind: "user", ID: "u3", Body: []byte(`{}`)}); r2 != r1+1 {
		t.Fatalf("revision after rollback and write = %d, want %d", r2, r1+1)
	}
}

func testRevision(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	var inTx int64
	rev := update(t, s, func(ctx context.Context, tx store.Tx) error {
		inTx = tx.Revision()
		for _, id := range []string{"a", "b", "c"} {
			if err := tx.Put(ctx, store.Object{Kind: "group", ID: id, Body: []byte(`{}`)}); err != nil {
				return err
			}
		}
		// A second write of one object is still one change.
		return tx.Put(ctx, store.Object{Kind: "group", ID: "a", Body: []byte(`{"again":true}`)})
	})
	if rev != inTx || rev <= 0 {
		t.Fatalf("Update returned %d, tx.Revision() said %d", rev, inTx)
	}
	for _, id := range []string{"a", "b", "c"} {
		if got := mustGet(t, s, "group", id); got.Revision != rev {
			t.Fatalf("group %s revision %d, want %d", id, got.Revision, rev)
		}
	}
	ch, err := s.Changes(ctx, rev-1, 0)
	if err != nil || len(ch) != 3 {
		t.Fatalf("Changes = %+v, %v; want 3 changes", ch, err)
	}
	for _, c := range ch {
		if c.Revision != rev || c.Kind != "group" || c.Op != store.OpPut {
			t.Fatalf("change %+v", c)
		}
	}
	prev := rev
	for i := range 5 {
		r := put(t, s, store.Object{Kind: "group", ID: fmt.Sprint("g", i), Body: []byte(`{}`)})
		if r != prev+1 {
			t.Fatalf("revision %d after %d", r, prev)
		}
		prev = r
	}
	if cur, err := s.Revision(ctx); err != nil || cur != prev {
		t.Fatalf("Revision = %d, %v; want %d", cur, err, prev)
	}
}

func testEmptyUpdate(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1 := put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{}`)})
	r2 := update(t, s, func(ctx context.Context, tx store.Tx) error {
		_, err := tx.Get(ctx, "user", "u1")
		return err
	})
	if r2 != r1 {
		t.Fatalf("read-only Update returned %d, want the current %d", r2, r1)
	}
	if r3 := put(t, s, store.Object{Kind: "user", ID: "u2", Body: []byte(`{}`)}); r3 != r1+1 {
		t.Fatalf("next write got %d, want %d", r3, r1+1)
	}
}

func testChanges(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	r1 := put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{}`)}, store.Object{Kind: "user", ID: "u2", Body: []byte(`{}`)})
	r2 := update(t, s, func(ctx context.Context, tx store.Tx) error { return tx.Delete(ctx, "user", "u1") })
	r3 := put(t, s, store.Object{Kind: "app", ID: "a1", Body: []byte(`{}`)}, store.Object{Kind: "app", ID: "a2", Body: []byte(`{}`)},
		store.Object{Kind: "app", ID: "a3", Body: []byte(`{}`)})
	want := []store.Change{
		{Revision: r1, Kind: "user", ID: "u1", Op: store.OpPut},
		{Revision: r1, Kind: "user", ID: "u2", Op: store.OpPut},
		{Revision: r2, Kind: "user", ID: "u1", Op: store.OpDelete},
		{Revision: r3, Kind: "app", ID: "a1", Op: store.OpPut},
		{Revision: r3, Kind: "app", ID: "a2", Op: store.OpPut},
		{Revision: r3, Kind: "app", ID: "a3", Op: store.OpPut},
	}
	for _, tc := range []struct {
		since int64
		limit int
		want  []store.Change
	}{
		{0, 0, want},
		{r1, 0, want[2:]},
		{r3, 0, nil},
		{0, 1, want[:2]}, // a revision is never split, even past limit
		{0, 3, want[:3]},
		{0, 4, want[:3]}, // r3 would be cut, so it is left for the next call
		{r2, 2, want[3:]},
	} {
		got, err := s.Changes(ctx, tc.since, tc.limit)
		if err != nil {
			t.Fatalf("Changes(%d, %d): %v", tc.since, tc.limit, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("Changes(%d, %d) = %v, want %v", tc.since, tc.limit, got, tc.want)
		}
	}
}

func testCompaction(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	const perRev = 10
	var last int64
	compacted := false
	for i := 0; i < 5*Retention/perRev && !compacted; i++ {
		last = update(t, s, func(ctx context.Context, tx store.Tx) error {
			for j := range perRev {
				if err := tx.Put(ctx, store.Object{Kind: "user", ID: fmt.Sprint("u", j), Body: []byte(fmt.Sprint(i))}); err != nil {
					return err
				}
			}
			return nil
		})
		_, err := s.Changes(ctx, 0, 1)
		compacted = errors.Is(err, store.ErrCompacted)
	}
	if !compacted {
		t.Fatalf("after %d revisions of %d changes the log still starts at 0 (retention %d)", last, perRev, Retention)
	}
	// Find the oldest readable point: everything after it must be there,
	// at least Retention rows, in whole revisions.
	var since int64
	for since = 0; since < last; since++ {
		if _, err := s.Changes(ctx, since, 1); err == nil {
			break
		} else if !errors.Is(err, store.ErrCompacted) {
			t.Fatalf("Changes(%d): %v", since, err)
		}
	}
	got, err := s.Changes(ctx, since, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < Retention || int64(len(got)) != (last-since)*perRev {
		t.Fatalf("after compaction Changes(%d) holds %d rows for revisions %d..%d; want all of them and at least %d",
			since, len(got), since+1, last, Retention)
	}
	if got[0].Revision != since+1 {
		t.Fatalf("first retained change is at revision %d, want %d", got[0].Revision, since+1)
	}
}

// receive waits for the channel to deliver a revision of at least want.
func receive(t *testing.T, ch <-chan int64, want int64, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("watch channel closed while waiting for revision %d", want)
			}
			if rev >= want {
				return
			}
		case <-timeout:
			t.Fatalf("no revision >= %d within %v", want, within)
		}
	}
}
