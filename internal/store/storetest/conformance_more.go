package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

func testWatchLocal(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	put(t, s, store.Object{Kind: "user", ID: "before", Body: []byte(`{}`)})
	ch := s.Watch(testCtx(t))
	rev := put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{}`)})
	receive(t, ch, rev, 5*time.Second)

	// A burst coalesces: the channel holds one value, and the newest wins.
	var last int64
	for i := range 20 {
		last = put(t, s, store.Object{Kind: "user", ID: fmt.Sprint("b", i), Body: []byte(`{}`)})
	}
	if n := len(ch); n > 1 {
		t.Fatalf("watch channel holds %d values, want at most 1", n)
	}
	receive(t, ch, last, 5*time.Second)
}

func testWatchOtherNode(t *testing.T, open func(t *testing.T) store.Store) {
	a := open(t)
	b := open(t) // a second node on the same database
	ch := a.Watch(testCtx(t))
	rev := put(t, b, store.Object{Kind: "user", ID: "u1", Body: []byte(`{}`)})
	receive(t, ch, rev, 10*time.Second)
	rev = put(t, b, store.Object{Kind: "user", ID: "u2", Body: []byte(`{}`)})
	receive(t, ch, rev, 10*time.Second)
	if got := mustGet(t, a, "user", "u2"); got.Revision != rev {
		t.Fatalf("node a reads %+v after node b wrote revision %d", got, rev)
	}
}

func testWatchClose(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := s.Watch(ctx)
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel still open 5s after its context ended")
		}
	}
}

func testView(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	r1 := put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{"v":1}`)})
	err := s.View(testCtx(t), func(ctx context.Context, r store.Reader, rev int64) error {
		if rev != r1 {
			return fmt.Errorf("view revision %d, want %d", rev, r1)
		}
		if got := mustGet(t, r, "user", "u1"); string(got.Body) != `{"v":1}` {
			return fmt.Errorf("first read in view: %s", got.Body)
		}
		// Commit a change while the view is open: it must not see it.
		put(t, s, store.Object{Kind: "user", ID: "u1", Body: []byte(`{"v":2}`)}, store.Object{Kind: "user", ID: "u2", Body: []byte(`{}`)})
		if got := mustGet(t, r, "user", "u1"); string(got.Body) != `{"v":1}` || got.Revision != r1 {
			return fmt.Errorf("view saw a later commit: %+v", got)
		}
		if _, err := r.Get(ctx, "user", "u2"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("view saw an object created after it began: %v", err)
		}
		list, err := r.List(ctx, "user", store.ListOptions{})
		if err != nil || len(list) != 1 {
			return fmt.Errorf("view lists %d users (%v), want 1", len(list), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "user", "u1"); string(got.Body) != `{"v":2}` {
		t.Fatalf("after the view: %s", got.Body)
	}
}

func testList(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	var objs []store.Object
	var ids []string
	for i := range 25 {
		// Mixed case: the order is byte order on every engine (so "B" < "a").
		id := fmt.Sprintf("%c%02d", "aB"[i%2], i)
		ids = append(ids, id)
		objs = append(objs, store.Object{Kind: "app", ID: id, Body: []byte(`{}`)})
	}
	objs = append(objs, store.Object{Kind: "user", ID: "x", Body: []byte(`{}`)})
	put(t, s, objs...)
	sort.Strings(ids)

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		page, err := s.List(ctx, "app", store.ListOptions{AfterID: after, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			if pages != 3 {
				t.Fatalf("%d pages of 10 for 25 objects", pages)
			}
			break
		}
		for _, o := range page {
			got = append(got, o.ID)
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("paged list = %v, want %v", got, ids)
	}
	all, err := s.List(ctx, "app", store.ListOptions{})
	if err != nil || len(all) != 25 {
		t.Fatalf("List without limit: %d objects, %v", len(all), err)
	}
	none, err := s.List(ctx, "nothing", store.ListOptions{})
	if err != nil || len(none) != 0 {
		t.Fatalf("List of an empty kind = %v, %v", none, err)
	}
}

func testTokens(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	now := time.Now()
	live := store.Token{Hash: bytes.Repeat([]byte{1}, 32), PrincipalID: "u1", ExpiresAt: now.Add(time.Hour), Description: "ci"}
	forever := store.Token{Hash: bytes.Repeat([]byte{2}, 32), PrincipalID: "u1"}
	expired := store.Token{Hash: bytes.Repeat([]byte{3}, 32), PrincipalID: "u2", ExpiresAt: now.Add(-time.Second)}
	for _, tok := range []store.Token{live, forever, expired} {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	wantErr(t, "CreateToken with a taken hash", s.CreateToken(ctx, live), store.ErrConflict)

	got, err := s.GetToken(ctx, live.Hash)
	if err != nil || got.PrincipalID != "u1" || got.Description != "ci" || !bytes.Equal(got.Hash, live.Hash) ||
		!got.ExpiresAt.Equal(live.ExpiresAt.Truncate(time.Microsecond)) || got.CreatedAt.IsZero() {
		t.Fatalf("GetToken = %+v, %v", got, err)
	}
	if got, err := s.GetToken(ctx, forever.Hash); err != nil || !got.ExpiresAt.IsZero() {
		t.Fatalf("GetToken of a token without expiry = %+v, %v", got, err)
	}
	_, err = s.GetToken(ctx, expired.Hash)
	wantErr(t, "GetToken of an expired token", err, store.ErrNotFound)
	_, err = s.GetToken(ctx, []byte("unknown"))
	wantErr(t, "GetToken of an unknown hash", err, store.ErrNotFound)
	// The expired token was deleted, so its hash is free again.
	if err := s.CreateToken(ctx, store.Token{Hash: expired.Hash, PrincipalID: "u2", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatalf("CreateToken over a deleted expired token: %v", err)
	}

	if err := s.DeleteToken(ctx, live.Hash); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteToken twice", s.DeleteToken(ctx, live.Hash), store.ErrNotFound)
	_, err = s.GetToken(ctx, live.Hash)
	wantErr(t, "GetToken after DeleteToken", err, store.ErrNotFound)

	if err := s.DeletePrincipalTokens(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetToken(ctx, forever.Hash)
	wantErr(t, "GetToken after DeletePrincipalTokens", err, store.ErrNotFound)
	if _, err := s.GetToken(ctx, expired.Hash); err != nil {
		t.Fatalf("DeletePrincipalTokens removed another principal's token: %v", err)
	}
}

func testCredentials(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	c := store.Credential{PrincipalID: "u1", Type: "password", Hash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}
	if err := s.SetCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, "u1", "password")
	if err != nil || got.Hash != c.Hash || got.UpdatedAt.IsZero() {
		t.Fatalf("GetCredential = %+v, %v", got, err)
	}
	c.Hash = "$argon2id$v=19$second"
	if err := s.SetCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCredential(ctx, "u1", "password"); err != nil || got.Hash != c.Hash {
		t.Fatalf("GetCredential after upsert = %+v, %v", got, err)
	}
	if err := s.SetCredential(ctx, store.Credential{PrincipalID: "u2", Type: "password", Hash: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCredential(ctx, "u1", "totp")
	wantErr(t, "GetCredential of a missing type", err, store.ErrNotFound)
	if err := s.DeleteCredentials(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetCredential(ctx, "u1", "password")
	wantErr(t, "GetCredential after DeleteCredentials", err, store.ErrNotFound)
	if _, err := s.GetCredential(ctx, "u2", "password"); err != nil {
		t.Fatalf("DeleteCredentials removed another principal's credential: %v", err)
	}
}

func testAudit(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)
	var seqs []int64
	for i := range 120 {
		e := store.AuditEvent{
			Time: at.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprint("req-", i),
			Actor: []string{"alice", "bob", ""}[i%3], Action: []string{"users.create", "auth.login"}[i%2],
			Target: fmt.Sprint("/users/", i), Result: "success", Status: 201, Details: []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
		seq, err := s.AppendAudit(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			t.Fatalf("seq %d after %d", seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, seq)
	}
	list := func(q store.AuditQuery) []store.AuditEvent {
		t.Helper()
		evs, err := s.ListAudit(ctx, q)
		if err != nil {
			t.Fatalf("ListAudit(%+v): %v", q, err)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Seq >= evs[i-1].Seq {
				t.Fatalf("ListAudit(%+v) not newest first: %d then %d", q, evs[i-1].Seq, evs[i].Seq)
			}
		}
		return evs
	}
	all := list(store.AuditQuery{})
	if len(all) != 100 || all[0].Seq != seqs[119] {
		t.Fatalf("default ListAudit: %d events starting at %d, want 100 starting at %d", len(all), all[0].Seq, seqs[119])
	}
	e := all[0]
	if !e.Time.Equal(at.Add(119*time.Second)) || e.RequestID != "req-119" || e.Actor != "" || e.Action != "auth.login" ||
		e.Target != "/users/119" || e.Result != "success" || e.Status != 201 || string(e.Details) != `{"i":119}` {
		t.Fatalf("newest event = %+v", e)
	}
	for _, tc := range []struct {
		name string
		q    store.AuditQuery
		want int
		test func(store.AuditEvent) bool
	}{
		{"actor", store.AuditQuery{Actor: "alice", Limit: 1000}, 40, func(e store.AuditEvent) bool { return e.Actor == "alice" }},
		{"action", store.AuditQuery{Action: "auth.login", Limit: 1000}, 60, func(e store.AuditEvent) bool { return e.Action == "auth.login" }},
		{"actor and action", store.AuditQuery{Actor: "bob", Action: "auth.login", Limit: 1000}, 20,
			func(e store.AuditEvent) bool { return e.Actor == "bob" && e.Action == "auth.login" }},
		{"after", store.AuditQuery{AfterSeq: seqs[109]}, 10, func(e store.AuditEvent) bool { return e.Seq > seqs[109] }},
		{"before", store.AuditQuery{BeforeSeq: seqs[10], Limit: 1000}, 10, func(e store.AuditEvent) bool { return e.Seq < seqs[10] }},
		{"between", store.AuditQuery{AfterSeq: seqs[9], BeforeSeq: seqs[20]}, 10,
			func(e store.AuditEvent) bool { return e.Seq > seqs[9] && e.Seq < seqs[20] }},
		{"target", store.AuditQuery{Target: "/users/7", Limit: 1000}, 1, func(e store.AuditEvent) bool { return e.Target == "/users/7" }},
		{"result", store.AuditQuery{Result: "failure", Limit: 1000}, 0, func(store.AuditEvent) bool { return false }},
		{"time range", store.AuditQuery{Since: at.Add(10 * time.Second), Until: at.Add(19 * time.Second), Limit: 1000}, 10,
			func(e store.AuditEvent) bool {
				return !e.Time.Before(at.Add(10*time.Second)) && !e.Time.After(at.Add(19*time.Second))
			}},
		{"action and time", store.AuditQuery{Action: "users.create", Since: at.Add(100 * time.Second), Limit: 1000}, 10,
			func(e store.AuditEvent) bool {
				return e.Action == "users.create" && !e.Time.Before(at.Add(100*time.Second))
			}},
		{"limit", store.AuditQuery{Limit: 7}, 7, func(store.AuditEvent) bool { return true }},
		{"limit above max", store.AuditQuery{Limit: 100000}, 120, func(store.AuditEvent) bool { return true }},
	} {
		got := list(tc.q)
		if len(got) != tc.want {
			t.Fatalf("%s: %d events, want %d", tc.name, len(got), tc.want)
		}
		for _, e := range got {
			if !tc.test(e) {
				t.Fatalf("%s: unexpected event %+v", tc.name, e)
			}
		}
	}
	// Paging back with BeforeSeq visits every event once.
	var n int
	for before := int64(0); ; {
		page := list(store.AuditQuery{BeforeSeq: before, Limit: 50})
		if len(page) == 0 {
			break
		}
		n += len(page)
		before = page[len(page)-1].Seq
	}
	if n != 120 {
		t.Fatalf("paging back visited %d events, want 120", n)
	}
}

func testConcurrentWriters(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	other := open(t) // writers on two nodes
	ctx := testCtx(t)
	start, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 50
	var mu sync.Mutex
	revs := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []store.Store{s, other}[w%2]
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				rev, err := node.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					return tx.Put(ctx, store.Object{Kind: "user", ID: id, Body: []byte(`{}`)})
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d update %d: %w", w, i, err)
					return
				}
				mu.Lock()
				if prev, dup := revs[rev]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("revision %d given to %s and %s", rev, prev, id)
					return
				}
				revs[rev] = id
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	changes, err := s.Changes(ctx, start, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != writers*each {
		t.Fatalf("%d changes after %d writes", len(changes), writers*each)
	}
	for i, c := range changes {
		if c.Revision != start+int64(i)+1 || revs[c.Revision] != c.ID {
			t.Fatalf("change %d = %+v; want revision %d for %s", i, c, start+int64(i)+1, revs[c.Revision])
		}
	}
	if cur, _ := s.Revision(ctx); cur != start+writers*each {
		t.Fatalf("revision %d after %d writes from %d", cur, writers*each, start)
	}
}

// testReadsInsideUpdates has many writers whose fn also reads through the
// store rather than the transaction: queued writers must not hold every
// pooled connection while the running one waits for one.
func testReadsInsideUpdates(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	put(t, s, store.Object{Kind: "user", ID: "seed", Body: []byte(`{}`)})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				_, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					if _, err := s.Get(ctx, "user", "seed"); err != nil {
						return err
					}
					return tx.Put(ctx, store.Object{Kind: "user", ID: fmt.Sprintf("w%d-%d", w, i), Body: []byte(`{}`)})
				})
				if err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
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
}
