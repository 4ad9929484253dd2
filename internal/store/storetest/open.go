// Package storetest holds the store conformance suite and the harness that
// gives tests real databases: a SQLite file in a temporary directory, or a
// fresh database on a PostgreSQL 15 server (VERITY_TEST_POSTGRES, or a
// cluster the test binary starts itself). Other packages use it to test
// against the real engines; it must never be imported by non-test code.
package storetest

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Retention is the ChangeRetention of stores made by Config; the
// conformance suite's compaction test relies on it.
const Retention = 500

// Config is the store configuration tests use: short polling so that
// cross-process changes show quickly, a small change log, small pools.
func Config(dsn string) store.Config {
	return store.Config{
		DSN:             dsn,
		ConnectTimeout:  10 * time.Second,
		PollInterval:    50 * time.Millisecond,
		MaxConns:        4,
		ChangeRetention: Retention,
	}
}

// SQLitePath returns a path for a SQLite file in t's temporary directory.
func SQLitePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "verity.db")
}

// OpenSQLite opens a store on a new SQLite file, closed when t ends.
func OpenSQLite(t testing.TB) store.Store {
	t.Helper()
	return OpenDSN(t, SQLitePath(t))
}

// OpenPostgres opens a store on a new PostgreSQL database, closed and
// dropped when t ends.
func OpenPostgres(t testing.TB) store.Store {
	t.Helper()
	return OpenDSN(t, PostgresDSN(t))
}

// OpenDSN opens a store with Config(dsn), closed when t ends.
func OpenDSN(t testing.TB, dsn string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, Config(dsn), nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Opener returns an open function for RunConformance: the first call for a
// test makes a new database with fresh, and every later call for the same
// test opens another store on that database, as a second node would.
func Opener(fresh func(testing.TB) string) func(t *testing.T) store.Store {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	return func(t *testing.T) store.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = fresh(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(dsns, t)
				mu.Unlock()
			})
		}
		return OpenDSN(t, dsn)
	}
}
