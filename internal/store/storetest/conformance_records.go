package storetest

import (
	"bytes"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

func testRecords(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	rev0, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRecord(ctx, store.Record{Kind: "session", ID: "s1", Subject: "u1", Body: []byte(`{"a":1}`), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil || r.Version != 1 || r.CreatedAt.IsZero() {
		t.Fatalf("CreateRecord = %+v, %v", r, err)
	}
	_, err = s.CreateRecord(ctx, store.Record{Kind: "session", ID: "s1", Subject: "u2"})
	wantErr(t, "CreateRecord of an existing id", err, store.ErrConflict)
	got, err := s.GetRecord(ctx, "session", "s1")
	if err != nil || got.Subject != "u1" || !bytes.Equal(got.Body, []byte(`{"a":1}`)) || got.Version != 1 || got.ExpiresAt.IsZero() {
		t.Fatalf("GetRecord = %+v, %v", got, err)
	}
	_, err = s.GetRecord(ctx, "flow", "s1")
	wantErr(t, "GetRecord of another kind", err, store.ErrNotFound)

	// Compare-and-swap: the first of two writers from version 1 wins.
	got.Body = []byte(`{"a":2}`)
	next, err := s.UpdateRecord(ctx, got)
	if err != nil || next.Version != 2 {
		t.Fatalf("UpdateRecord = %+v, %v", next, err)
	}
	got.Body = []byte(`{"a":3}`)
	_, err = s.UpdateRecord(ctx, got)
	wantErr(t, "UpdateRecord from a stale version", err, store.ErrConflict)
	_, err = s.UpdateRecord(ctx, store.Record{Kind: "session", ID: "nope", Version: 1})
	wantErr(t, "UpdateRecord of a missing record", err, store.ErrNotFound)
	if cur, _ := s.GetRecord(ctx, "session", "s1"); string(cur.Body) != `{"a":2}` {
		t.Fatalf("body after a refused update: %s", cur.Body)
	}

	// Exactly one of many concurrent swaps from one version succeeds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := next
			c.Body = []byte{byte('0' + i)}
			if _, err := s.UpdateRecord(ctx, c); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent swaps from one version succeeded, want 1", wins)
	}

	// Put ignores versions; records of one subject list and delete together.
	p, err := s.PutRecord(ctx, store.Record{Kind: "session", ID: "s2", Subject: "u1", Body: []byte("x")})
	if err != nil || p.Version != 1 {
		t.Fatalf("PutRecord (insert) = %+v, %v", p, err)
	}
	if p, err = s.PutRecord(ctx, store.Record{Kind: "session", ID: "s2", Subject: "u1", Body: []byte("y")}); err != nil || p.Version != 2 {
		t.Fatalf("PutRecord (replace) = %+v, %v", p, err)
	}
	if _, err := s.CreateRecord(ctx, store.Record{Kind: "session", ID: "s3", Subject: "u2"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListRecords(ctx, "session", "u1", 0)
	if err != nil || len(list) != 2 || list[0].ID != "s1" || list[1].ID != "s2" {
		t.Fatalf("ListRecords = %+v, %v", list, err)
	}
	if n, err := s.DeleteRecords(ctx, "session", "u1"); err != nil || n != 2 {
		t.Fatalf("DeleteRecords = %d, %v", n, err)
	}
	if _, err := s.GetRecord(ctx, "session", "s3"); err != nil {
		t.Fatalf("DeleteRecords removed another subject's record: %v", err)
	}
	if err := s.DeleteRecord(ctx, "session", "s3"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteRecord twice", s.DeleteRecord(ctx, "session", "s3"), store.ErrNotFound)

	// Expired records read as absent, do not list, and free their id.
	if _, err := s.CreateRecord(ctx, store.Record{Kind: "code", ID: "c1", Subject: "u1", ExpiresAt: time.Now().Add(50 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(80 * time.Millisecond)
	_, err = s.GetRecord(ctx, "code", "c1")
	wantErr(t, "GetRecord of an expired record", err, store.ErrNotFound)
	if list, _ := s.ListRecords(ctx, "code", "u1", 0); len(list) != 0 {
		t.Fatalf("an expired record is listed: %+v", list)
	}
	if _, err := s.CreateRecord(ctx, store.Record{Kind: "code", ID: "c1", Subject: "u1"}); err != nil {
		t.Fatalf("CreateRecord over an expired record: %v", err)
	}

	// Bad input.
	if _, err := s.CreateRecord(ctx, store.Record{Kind: "", ID: "x"}); err == nil {
		t.Error("CreateRecord without a kind succeeded")
	}
	if _, err := s.PutRecord(ctx, store.Record{Kind: "k", ID: "x", Body: make([]byte, store.MaxRecordBody+1)}); err == nil {
		t.Error("PutRecord of an oversized body succeeded")
	}

	// None of it is configuration: the revision did not move.
	if rev, _ := s.Revision(ctx); rev != rev0 {
		t.Fatalf("records moved the revision from %d to %d", rev0, rev)
	}
}

func testAuditAsync(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := testCtx(t)
	for i := range 200 {
		if err := s.AppendAuditAsync(ctx, store.AuditEvent{Actor: "sp", Action: "signIn", Target: "/x", Result: "success",
			Details: []byte(`{"i":` + strconv.Itoa(i) + `}`)}); err != nil {
			t.Fatal(err)
		}
	}
	// A waited-for event is durable only after everything queued before it.
	if _, err := s.AppendAudit(ctx, store.AuditEvent{Actor: "u", Action: "signIn", Target: "/x", Result: "failure"}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ListAudit(ctx, store.AuditQuery{Action: "signIn", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 201 || evs[0].Actor != "u" {
		t.Fatalf("%d events, newest by %q; want 201, newest the waited one", len(evs), evs[0].Actor)
	}
}
