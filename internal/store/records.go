package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxRecordBody bounds one record's body.
const MaxRecordBody = 1 << 20

func checkRecord(r *Record, op string) error {
	if r.Kind == "" || r.ID == "" {
		return fmt.Errorf("store: %s record: kind and id are required", op)
	}
	if len(r.Body) > MaxRecordBody {
		return fmt.Errorf("store: %s record %s/%s: body of %d bytes exceeds %d", op, r.Kind, r.ID, len(r.Body), MaxRecordBody)
	}
	if r.Body == nil {
		r.Body = []byte{}
	}
	return nil
}

// CreateRecord inserts r with version 1; ErrConflict when (Kind, ID)
// exists and has not expired. Expired records of the kind are deleted on
// the way.
func (s *sqlStore) CreateRecord(ctx context.Context, r Record) (Record, error) {
	if err := checkRecord(&r, "create"); err != nil {
		return Record{}, err
	}
	now := time.Now()
	w := s.eng.writes()
	if _, err := w.exec(ctx, `DELETE FROM records WHERE kind = ? AND expires_at IS NOT NULL AND expires_at <= ?`, r.Kind, toMicros(now)); err != nil {
		return Record{}, s.wrap(ctx, err, "create %s record: delete expired records", r.Kind)
	}
	r.Version, r.CreatedAt, r.UpdatedAt = 1, now, now
	n, err := w.exec(ctx, `INSERT INTO records (kind, id, subject, version, body, created_at, updated_at, expires_at)
		VALUES (?, ?, ?, 1, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		r.Kind, r.ID, r.Subject, r.Body, toMicros(now), toMicros(now), nullMicros(r.ExpiresAt))
	if err != nil {
		return Record{}, s.wrap(ctx, err, "create %s record", r.Kind)
	}
	if n == 0 {
		return Record{}, fmt.Errorf("store: create %s record: id exists: %w", r.Kind, ErrConflict)
	}
	return r, nil
}

// GetRecord returns the record kind/id; ErrNotFound when absent or
// expired.
func (s *sqlStore) GetRecord(ctx context.Context, kind, id string) (Record, error) {
	r := Record{Kind: kind, ID: id}
	var created, updated int64
	var expires *int64
	err := s.eng.reads().queryRow(ctx, `SELECT subject, version, body, created_at, updated_at, expires_at
		FROM records WHERE kind = ? AND id = ?`, kind, id).Scan(&r.Subject, &r.Version, &r.Body, &created, &updated, &expires)
	if err != nil {
		// Record ids can be secrets' digests: they stay out of messages.
		return Record{}, s.wrap(ctx, err, "get %s record", kind)
	}
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	if expires != nil {
		r.ExpiresAt = fromMicros(*expires)
		if !r.ExpiresAt.After(time.Now()) {
			return Record{}, fmt.Errorf("store: get %s record: expired: %w", kind, ErrNotFound)
		}
	}
	return r, nil
}

// UpdateRecord replaces the subject, body and expiry of a live record
// whose stored version is r.Version, and returns it with the next
// version: ErrConflict when another write came first, ErrNotFound when the
// record is absent or expired. It is how a refresh token is used once.
func (s *sqlStore) UpdateRecord(ctx context.Context, r Record) (Record, error) {
	if err := checkRecord(&r, "update"); err != nil {
		return Record{}, err
	}
	now := time.Now()
	n, err := s.eng.writes().exec(ctx, `UPDATE records SET subject = ?, body = ?, version = version + 1, updated_at = ?, expires_at = ?
		WHERE kind = ? AND id = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)`,
		r.Subject, r.Body, toMicros(now), nullMicros(r.ExpiresAt), r.Kind, r.ID, r.Version, toMicros(now))
	if err != nil {
		return Record{}, s.wrap(ctx, err, "update %s record", r.Kind)
	}
	if n == 0 {
		if _, err := s.GetRecord(ctx, r.Kind, r.ID); err != nil {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("store: update %s record: version %d is not current: %w", r.Kind, r.Version, ErrConflict)
	}
	r.Version++
	r.UpdatedAt = now
	return r, nil
}

// PutRecord inserts r or replaces the record (Kind, ID), whatever its
// version, and returns it as stored.
func (s *sqlStore) PutRecord(ctx context.Context, r Record) (Record, error) {
	if err := checkRecord(&r, "put"); err != nil {
		return Record{}, err
	}
	now := time.Now()
	var created int64
	err := s.eng.writes().queryRow(ctx, `INSERT INTO records (kind, id, subject, version, body, created_at, updated_at, expires_at)
		VALUES (?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET subject = excluded.subject, body = excluded.body,
			version = records.version + 1, updated_at = excluded.updated_at, expires_at = excluded.expires_at
		RETURNING version, created_at`,
		r.Kind, r.ID, r.Subject, r.Body, toMicros(now), toMicros(now), nullMicros(r.ExpiresAt)).Scan(&r.Version, &created)
	if err != nil {
		return Record{}, s.wrap(ctx, err, "put %s record", r.Kind)
	}
	r.CreatedAt, r.UpdatedAt = fromMicros(created), now
	return r, nil
}

// DeleteRecord removes one record; ErrNotFound when absent.
func (s *sqlStore) DeleteRecord(ctx context.Context, kind, id string) error {
	n, err := s.eng.writes().exec(ctx, `DELETE FROM records WHERE kind = ? AND id = ?`, kind, id)
	if err != nil {
		return s.wrap(ctx, err, "delete %s record", kind)
	}
	if n == 0 {
		return fmt.Errorf("store: delete %s record: %w", kind, ErrNotFound)
	}
	return nil
}

// DeleteRecords removes every record of kind with this subject and says
// how many there were.
func (s *sqlStore) DeleteRecords(ctx context.Context, kind, subject string) (int, error) {
	if kind == "" || subject == "" {
		return 0, errors.New("store: delete records: kind and subject are required")
	}
	n, err := s.eng.writes().exec(ctx, `DELETE FROM records WHERE kind = ? AND subject = ?`, kind, subject)
	if err != nil {
		return 0, s.wrap(ctx, err, "delete %s records of a subject", kind)
	}
	return int(n), nil
}

// ListRecords returns the live records of kind with this subject, oldest
// first, at most limit (<= 0: 1000).
func (s *sqlStore) ListRecords(ctx context.Context, kind, subject string, limit int) ([]Record, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rs, err := s.eng.reads().query(ctx, `SELECT id, version, body, created_at, updated_at, expires_at FROM records
		WHERE kind = ? AND subject = ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at, id LIMIT ?`,
		kind, subject, toMicros(time.Now()), limit)
	if err != nil {
		return nil, s.wrap(ctx, err, "list %s records", kind)
	}
	defer rs.Close()
	var out []Record
	for rs.Next() {
		r := Record{Kind: kind, Subject: subject}
		var created, updated int64
		var expires *int64
		if err := rs.Scan(&r.ID, &r.Version, &r.Body, &created, &updated, &expires); err != nil {
			return nil, s.wrap(ctx, err, "list %s records", kind)
		}
		r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
		if expires != nil {
			r.ExpiresAt = fromMicros(*expires)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, s.wrap(ctx, err, "list %s records", kind)
	}
	return out, nil
}
