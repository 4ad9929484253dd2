package store

import "context"

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
