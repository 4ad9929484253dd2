package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engines lists, for each engine, how to get a DSN to a new database.
var engines = []struct {
	name  string
	fresh func(testing.TB) string
}{
	{"sqlite", storetest.SQLitePath},
	{"postgres", storetest.PostgresDSN},
}

func TestConformance(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunConformance(t, storetest.Opener(e.fresh))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSchemaTooNew(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			dsn := e.fresh(t)
			s, err := store.Open(ctx, storetest.Config(dsn), nil)
			if err != nil {
				t.Fatal(err)
			}
			known, err := store.QueryIntForTest(ctx, s, `SELECT MAX(version) FROM schema_migrations`)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.ExecForTest(ctx, s, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				7, "0007_future.sql", 0); err != nil {
				t.Fatal(err)
			}
			s.Close()

			s, err = store.Open(ctx, storetest.Config(dsn), nil)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on a database with a newer schema")
			}
			if !errors.Is(err, store.ErrSchemaTooNew) {
				t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
			}
			want := fmt.Sprintf("database schema version 7 is newer than this binary supports (%d); upgrade verity", known)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("Open error %q does not say %q", err, want)
			}
		})
	}
}

func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxFor(t)
			dsn := e.fresh(t)
			const nodes = 4
			stores := make([]store.Store, nodes)
			errs := make([]error, nodes)
			var wg sync.WaitGroup
			for i := range nodes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					stores[i], errs[i] = store.Open(ctx, storetest.Config(dsn), nil)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("node %d: Open: %v", i, err)
				}
				t.Cleanup(func() { stores[i].Close() })
			}
			rows, err := store.QueryIntForTest(ctx, stores[0], `SELECT COUNT(*) FROM schema_migrations`)
			if err != nil {
				t.Fatal(err)
			}
			distinct, err := store.QueryIntForTest(ctx, stores[0], `SELECT COUNT(DISTINCT version) FROM schema_migrations`)
			if err != nil {
				t.Fatal(err)
			}
			if rows != distinct || rows == 0 {
				t.Fatalf("schema_migrations holds %d rows for %d versions", rows, distinct)
			}
			state, err := store.QueryIntForTest(ctx, stores[0], `SELECT COUNT(*) FROM store_state`)
			if err != nil || state != 1 {
				t.Fatalf("store_state holds %d rows (%v), want 1", state, err)
			}
			// Every node works on the shared schema.
			for i, s := range stores {
				if _, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
					return tx.Put(ctx, store.Object{Kind: "node", ID: fmt.Sprint(i), Body: []byte(`{}`)})
				}); err != nil {
					t.Fatalf("node %d: %v", i, err)
				}
			}
		})
	}
}

// TestSQLiteSettings checks the durability settings of every connection
// and that the database file is readable by its owner only.
func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	path := storetest.SQLitePath(t)
	s := storetest.OpenDSN(t, "sqlite:"+path)
	got, err := store.SQLitePragmasForTest(ctxFor(t), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, conn := range []string{"writer", "reader"} {
		for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000"} {
			if v := got[conn+"."+pragma]; v != want {
				t.Errorf("%s connection: PRAGMA %s = %q, want %q", conn, pragma, v, want)
			}
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		t.Fatalf("database file mode %v, want no group or other access", mode)
	}
}
