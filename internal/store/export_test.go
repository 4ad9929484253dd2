package store

import (
	"context"
	"fmt"
)

// ExecForTest runs a raw statement ("?" placeholders) on s's database, so
// tests can set up states the API cannot make (a newer schema version).
func ExecForTest(ctx context.Context, s Store, q string, args ...any) error {
	_, err := s.(*sqlStore).eng.writes().exec(ctx, q, args...)
	return err
}

// QueryIntForTest returns the single integer q selects.
func QueryIntForTest(ctx context.Context, s Store, q string, args ...any) (int64, error) {
	var n int64
	err := s.(*sqlStore).eng.reads().queryRow(ctx, q, args...).Scan(&n)
	return n, err
}

// SQLitePragmasForTest reads the settings every SQLite connection must
// have, from the writer and from a reader: "writer.synchronous" -> "2"...
func SQLitePragmasForTest(ctx context.Context, s Store) (map[string]string, error) {
	e, ok := s.(*sqlStore).eng.(*sqliteEngine)
	if !ok {
		return nil, fmt.Errorf("not a sqlite store")
	}
	out := map[string]string{}
	for name, q := range map[string]querier{"writer": e.writes(), "reader": e.reads()} {
		for _, p := range []string{"journal_mode", "synchronous", "foreign_keys", "busy_timeout"} {
			var v string
			if err := q.queryRow(ctx, "PRAGMA "+p).Scan(&v); err != nil {
				return nil, err
			}
			out[name+"."+p] = v
		}
	}
	return out, nil
}

// AppendAuditLeafHashesForTest hashes leaves into s's audit tree without
// events, as the append path does: benchmarks build large trees with it.
func AppendAuditLeafHashesForTest(ctx context.Context, s Store, hashes [][]byte) error {
	ss := s.(*sqlStore)
	tx, err := ss.eng.beginWrite(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.rollback(ctx) }()
	t, err := lockAuditTree(ctx, tx)
	if err != nil {
		return err
	}
	if _, err := appendAuditLeaves(ctx, tx, &t, hashes, nil); err != nil {
		return err
	}
	return tx.commit(ctx)
}
