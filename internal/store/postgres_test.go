package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now

	const password = "s3cret-Pa55word"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := store.Config{
		DSN:            fmt.Sprintf("postgres://verity:%s@127.0.0.1:%d/verity?sslmode=disable", password, port),
		ConnectTimeout: time.Second,
	}
	start := time.Now()
	s, err := store.Open(context.Background(), cfg, log)
	took := time.Since(start)
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Open: %v, want ErrUnavailable", err)
	}
	if took < 900*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Open gave up after %v, want about the 1s ConnectTimeout", took)
	}
	msg := err.Error()
	if strings.Contains(msg, password) || strings.Contains(logs.String(), password) {
		t.Fatalf("the password leaked:\nerror: %s\nlogs: %s", msg, logs.String())
	}
	if !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) {
		t.Fatalf("error %q does not name the server", msg)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n < 2 {
		t.Fatalf("want a warning per failed attempt, got %d:\n%s", n, logs.String())
	}
}

func TestPostgresBadPasswordNotLeaked(t *testing.T) {
	t.Parallel()
	// A parse error must not echo the DSN either.
	const password = "pa55-in-a-broken-dsn"
	_, err := store.Open(context.Background(), store.Config{DSN: "postgres://u:" + password + "@127.0.0.1:5432/db?sslmode=bogus"}, nil)
	if err == nil || strings.Contains(err.Error(), password) {
		t.Fatalf("Open with a bad dsn: %v", err)
	}
}

// TestPostgresListen proves cross-node notification through LISTEN/NOTIFY:
// polling is set to an hour, so only a notification can wake the watcher.
func TestPostgresListen(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := openNoPoll(t, dsn)
	b := openNoPoll(t, dsn)
	ch := a.Watch(ctxFor(t))
	time.Sleep(200 * time.Millisecond) // let the listener connect
	rev := mustPut(t, b, "u1")
	receiveRev(t, ch, rev, 5*time.Second)
}

func openNoPoll(t *testing.T, dsn string) store.Store {
	t.Helper()
	cfg := storetest.Config(dsn)
	cfg.PollInterval = time.Hour
	cfg.ConnectTimeout = 2 * time.Second
	s, err := store.Open(ctxFor(t), cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustPut(t *testing.T, s store.Store, id string) int64 {
	t.Helper()
	rev, err := s.Update(ctxFor(t), func(ctx context.Context, tx store.Tx) error {
		return tx.Put(ctx, store.Object{Kind: "user", ID: id, Body: []byte(`{}`)})
	})
	if err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
	return rev
}

func receiveRev(t *testing.T, ch <-chan int64, want int64, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case rev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed while waiting for revision %d", want)
			}
			if rev >= want {
				return
			}
		case <-timeout:
			t.Fatalf("no revision >= %d within %v", want, within)
		}
	}
}

// eventually retries op until it succeeds; every failure on the way must
// be ErrUnavailable.
func eventually(t *testing.T, what string, within time.Duration, op func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := op(ctx)
		cancel()
		if err == nil {
			return
		}
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("%s: %v, want success or ErrUnavailable", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still failing after %v: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostgresBackendsTerminated kills every server connection of the
// store (as an administrator or a failover would): operations fail with
// ErrUnavailable at worst, then recover, and the listener reconnects.
func TestPostgresBackendsTerminated(t *testing.T) {
	t.Parallel()
	dsn := storetest.PostgresDSN(t)
	a := openNoPoll(t, dsn)
	b := openNoPoll(t, dsn)
	ch := a.Watch(ctxFor(t))
	time.Sleep(200 * time.Millisecond)
	receiveRev(t, ch, mustPut(t, b, "before"), 5*time.Second)

	ctx := ctxFor(t)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no backend to terminate")
	}

	for _, s := range []store.Store{a, b} {
		eventually(t, "Get", 10*time.Second, func(ctx context.Context) error {
			_, err := s.Get(ctx, "user", "before")
			return err
		})
	}
	var rev int64
	eventually(t, "Update", 10*time.Second, func(ctx context.Context) (err error) {
		rev, err = b.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, store.Object{Kind: "user", ID: "after", Body: []byte(`{}`)})
		})
		return err
	})
	receiveRev(t, ch, rev, 10*time.Second)
}

// TestPostgresServerRestart stops the server under open stores: every
// operation fails with ErrUnavailable, none panics, and all recover, the
// change feed included, once the server is back.
func TestPostgresServerRestart(t *testing.T) {
	t.Parallel()
	cluster := storetest.StartCluster(t)
	dsn := cluster.DSN(t)
	a := openNoPoll(t, dsn)
	b := openNoPoll(t, dsn)
	ch := a.Watch(ctxFor(t))
	time.Sleep(200 * time.Millisecond)
	receiveRev(t, ch, mustPut(t, b, "before"), 5*time.Second)

	cluster.Stop(t)
	ops := map[string]func(ctx context.Context) error{
		"Get": func(ctx context.Context) error { _, err := a.Get(ctx, "user", "before"); return err },
		"List": func(ctx context.Context) error {
			_, err := a.List(ctx, "user", store.ListOptions{})
			return err
		},
		"Update": func(ctx context.Context) error {
			_, err := a.Update(ctx, func(ctx context.Context, tx store.Tx) error {
				return tx.Put(ctx, store.Object{Kind: "user", ID: "down", Body: []byte(`{}`)})
			})
			return err
		},
		"View": func(ctx context.Context) error {
			return a.View(ctx, func(context.Context, store.Reader, int64) error { return nil })
		},
		"Revision": func(ctx context.Context) error { _, err := a.Revision(ctx); return err },
		"Changes":  func(ctx context.Context) error { _, err := a.Changes(ctx, 0, 10); return err },
		"AppendAudit": func(ctx context.Context) error {
			_, err := a.AppendAudit(ctx, store.AuditEvent{Action: "x"})
			return err
		},
		"GetToken": func(ctx context.Context) error {
			if _, err := a.GetToken(ctx, []byte("h")); !errors.Is(err, store.ErrNotFound) {
				return err
			}
			return nil
		},
		"Ping": func(ctx context.Context) error { return a.Ping(ctx) },
	}
	for name, op := range ops {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := op(ctx)
		cancel()
		t.Logf("%s with the server down: %v", name, err)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want ErrUnavailable", name, err)
		}
	}

	cluster.Start(t)
	for name, op := range ops {
		eventually(t, name, 15*time.Second, op)
	}
	// The listener reconnected: a write on the other node wakes a.
	var rev int64
	eventually(t, "Update on b", 15*time.Second, func(ctx context.Context) (err error) {
		rev, err = b.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, store.Object{Kind: "user", ID: "after", Body: []byte(`{}`)})
		})
		return err
	})
	receiveRev(t, ch, rev, 15*time.Second)
}

// testWriter sends a store's logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
