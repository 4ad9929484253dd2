package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// bumpRevisionSQL increments the store revision; the row lock it takes is
// held to the end of the transaction.
const bumpRevisionSQL = `UPDATE store_state SET revision = revision + 1 WHERE id = 1 RETURNING revision`

const objectColumns = `kind, id, COALESCE(key, ''), managed_by, body, revision, created_at, updated_at`

// reader implements Reader on any querier: the store's read pool, a read
// snapshot, or a write transaction (which then sees its own writes).
type reader struct {
	s *sqlStore
	q querier
}

func scanObject(r interface{ Scan(...any) error }) (Object, error) {
	var o Object
	var created, updated int64
	if err := r.Scan(&o.Kind, &o.ID, &o.Key, &o.ManagedBy, &o.Body, &o.Revision, &created, &updated); err != nil {
		return Object{}, err
	}
	o.CreatedAt = fromMicros(created)
	o.UpdatedAt = fromMicros(updated)
	return o, nil
}

// Get returns the object kind/id; ErrNotFound when absent.
func (r reader) Get(ctx context.Context, kind, id string) (Object, error) {
	o, err := scanObject(r.q.queryRow(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = ? AND id = ?`, kind, id))
	if err != nil {
		return Object{}, r.s.wrap(ctx, err, "get %s %s", kind, id)
	}
	return o, nil
}

// GetByKey returns the object of kind whose natural key is key.
func (r reader) GetByKey(ctx context.Context, kind, key string) (Object, error) {
	if key == "" {
		return Object{}, fmt.Errorf("store: get %s by key: empty key: %w", kind, ErrNotFound)
	}
	o, err := scanObject(r.q.queryRow(ctx, `SELECT `+objectColumns+` FROM objects WHERE kind = ? AND key = ?`, kind, key))
	if err != nil {
		return Object{}, r.s.wrap(ctx, err, "get %s by key %q", kind, key)
	}
	return o, nil
}

// List returns objects of kind in ID order after opts.AfterID.
func (r reader) List(ctx context.Context, kind string, opts ListOptions) ([]Object, error) {
	q := `SELECT ` + objectColumns + ` FROM objects WHERE kind = ? AND id > ? ORDER BY id`
	args := []any{kind, opts.AfterID}
	if opts.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, opts.Limit)
	}
	rs, err := r.q.query(ctx, q, args...)
	if err != nil {
		return nil, r.s.wrap(ctx, err, "list %s", kind)
	}
	defer rs.Close()
	var out []Object
	for rs.Next() {
		o, err := scanObject(rs)
		if err != nil {
			return nil, r.s.wrap(ctx, err, "list %s", kind)
		}
		out = append(out, o)
	}
	if err := rs.Err(); err != nil {
		return nil, r.s.wrap(ctx, err, "list %s", kind)
	}
	return out, nil
}

// Get returns the object kind/id; ErrNotFound when absent.
func (s *sqlStore) Get(ctx context.Context, kind, id string) (Object, error) {
	return reader{s, s.eng.reads()}.Get(ctx, kind, id)
}

// GetByKey returns the object of kind whose natural key is key.
func (s *sqlStore) GetByKey(ctx context.Context, kind, key string) (Object, error) {
	return reader{s, s.eng.reads()}.GetByKey(ctx, kind, key)
}

// List returns objects of kind in ID order after opts.AfterID.
func (s *sqlStore) List(ctx context.Context, kind string, opts ListOptions) ([]Object, error) {
	return reader{s, s.eng.reads()}.List(ctx, kind, opts)
}

// Revision is the latest committed revision.
func (s *sqlStore) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.eng.reads().queryRow(ctx, `SELECT revision FROM store_state WHERE id = 1`).Scan(&rev); err != nil {
		return 0, s.wrap(ctx, err, "read revision")
	}
	return rev, nil
}

// View runs fn on one consistent snapshot and the revision it reflects.
func (s *sqlStore) View(ctx context.Context, fn func(ctx context.Context, r Reader, revision int64) error) error {
	tx, err := s.eng.beginRead(ctx)
	if err != nil {
		return s.wrap(ctx, err, "begin view")
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }() // read-only: nothing to undo
	var rev int64
	if err := tx.queryRow(ctx, `SELECT revision FROM store_state WHERE id = 1`).Scan(&rev); err != nil {
		return s.wrap(ctx, err, "view: read revision")
	}
	return fn(ctx, reader{s, tx}, rev)
}

// Update runs fn in one write transaction. Every Update takes the revision
// row lock first, so Updates run one at a time on every engine and node:
// what fn reads cannot change before it commits, and revisions commit in
// order, which is what lets a change-feed reader trust "revision > since".
// fn must not call Update (it would wait for itself) nor use tx after it
// returns or from several goroutines.
func (s *sqlStore) Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) (int64, error) {
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return 0, fmt.Errorf("store: update: wait for the writer: %w", ctx.Err())
	}
	tx, err := s.eng.beginWrite(ctx)
	if err != nil {
		return 0, s.wrap(ctx, err, "begin update")
	}
	done := false
	defer func() {
		if !done {
			_ = tx.rollback(context.WithoutCancel(ctx))
		}
	}()
	rev, err := s.eng.bumpRevision(ctx, tx)
	if err != nil {
		return 0, s.wrap(ctx, err, "update: bump revision")
	}
	w := &writeTx{reader: reader{s, tx}, tx: tx, rev: rev, now: toMicros(time.Now()), written: map[changeKey]int{}}
	if err := fn(ctx, w); err != nil {
		return 0, err
	}
	if len(w.changes) == 0 {
		// Nothing written: undo the bump so revisions stay gapless.
		done = true
		if err := tx.rollback(ctx); err != nil {
			return 0, s.wrap(ctx, err, "update: roll back empty transaction")
		}
		return rev - 1, nil
	}
	if err := s.recordChanges(ctx, tx, rev, w.changes); err != nil {
		return 0, s.wrap(ctx, err, "update: record changes of revision %d", rev)
	}
	if a, ok := ctx.Value(auditWithKey{}).(*AuditReceipt); ok && !a.Written {
		// The change's audit event, in the change's transaction: no
		// change without its record.
		e := a.make(rev, w.changes)
		if err := appendAuditInTx(ctx, tx, &e); err != nil {
			return 0, s.wrap(ctx, err, "update: audit revision %d", rev)
		}
		a.pending = e
	}
	if rev%s.compactEvery == 0 {
		if err := s.compact(ctx, tx); err != nil {
			return 0, s.wrap(ctx, err, "update: compact change log")
		}
	}
	done = true
	if err := tx.commit(ctx); err != nil {
		return 0, s.wrap(ctx, err, "update: commit revision %d", rev)
	}
	if a, ok := ctx.Value(auditWithKey{}).(*AuditReceipt); ok && !a.Written {
		a.Event, a.Written = a.pending, true
	}
	s.feed.publish(rev)
	return rev, nil
}

type changeKey struct{ kind, id string }

// writeTx implements Tx.
type writeTx struct {
	reader
	tx      txn
	rev     int64
	now     int64
	changes []Change
	written map[changeKey]int // index in changes, so a rewrite keeps one row
}

// Revision is the revision every write of this transaction carries.
func (w *writeTx) Revision() int64 { return w.rev }

func (w *writeTx) record(kind, id string, op Op) {
	k := changeKey{kind, id}
	if i, ok := w.written[k]; ok {
		w.changes[i].Op = op
		return
	}
	w.written[k] = len(w.changes)
	w.changes = append(w.changes, Change{Revision: w.rev, Kind: kind, ID: id, Op: op})
}

func checkIdentity(op string, obj Object) error {
	if obj.Kind == "" || obj.ID == "" {
		return fmt.Errorf("store: %s object: kind and id are required (got kind %q, id %q)", op, obj.Kind, obj.ID)
	}
	return nil
}

// nullKey stores an empty key as NULL, so it is exempt from uniqueness.
func nullKey(key string) any {
	if key == "" {
		return nil
	}
	return key
}

// keyTaken reports whether another object of kind holds key. Updates are
// serialized, so the answer holds until commit.
func (w *writeTx) keyTaken(ctx context.Context, kind, key, id string) (bool, error) {
	if key == "" {
		return false, nil
	}
	var n int
	err := w.tx.queryRow(ctx, `SELECT COUNT(*) FROM objects WHERE kind = ? AND key = ? AND id <> ?`, kind, key, id).Scan(&n)
	return n > 0, err
}

// Create inserts obj; ErrConflict when its ID or Key exists in its kind.
func (w *writeTx) Create(ctx context.Context, obj Object) error {
	if err := checkIdentity("create", obj); err != nil {
		return err
	}
	// ON CONFLICT DO NOTHING reports a collision without raising an
	// error, which on PostgreSQL would abort the whole transaction.
	n, err := w.tx.exec(ctx, `INSERT INTO objects (kind, id, key, managed_by, body, revision, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		obj.Kind, obj.ID, nullKey(obj.Key), obj.ManagedBy, string(obj.Body), w.rev, w.now, w.now)
	if err != nil {
		return w.s.wrap(ctx, err, "create %s %s", obj.Kind, obj.ID)
	}
	if n == 0 {
		return fmt.Errorf("store: create %s %s: id or key %q exists: %w", obj.Kind, obj.ID, obj.Key, ErrConflict)
	}
	w.record(obj.Kind, obj.ID, OpPut)
	return nil
}

// Put inserts or replaces obj by (Kind, ID).
func (w *writeTx) Put(ctx context.Context, obj Object) error {
	if err := checkIdentity("put", obj); err != nil {
		return err
	}
	taken, err := w.keyTaken(ctx, obj.Kind, obj.Key, obj.ID)
	if err != nil {
		return w.s.wrap(ctx, err, "put %s %s", obj.Kind, obj.ID)
	}
	if taken {
		return fmt.Errorf("store: put %s %s: key %q is held by another object: %w", obj.Kind, obj.ID, obj.Key, ErrConflict)
	}
	_, err = w.tx.exec(ctx, `INSERT INTO objects (kind, id, key, managed_by, body, revision, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET key = excluded.key, managed_by = excluded.managed_by,
			body = excluded.body, revision = excluded.revision, updated_at = excluded.updated_at`,
		obj.Kind, obj.ID, nullKey(obj.Key), obj.ManagedBy, string(obj.Body), w.rev, w.now, w.now)
	if err != nil {
		return w.s.wrap(ctx, err, "put %s %s", obj.Kind, obj.ID)
	}
	w.record(obj.Kind, obj.ID, OpPut)
	return nil
}

// Update replaces an existing object, optionally only at ifRevision.
func (w *writeTx) Update(ctx context.Context, obj Object, ifRevision int64) error {
	if err := checkIdentity("update", obj); err != nil {
		return err
	}
	taken, err := w.keyTaken(ctx, obj.Kind, obj.Key, obj.ID)
	if err != nil {
		return w.s.wrap(ctx, err, "update %s %s", obj.Kind, obj.ID)
	}
	if taken {
		return fmt.Errorf("store: update %s %s: key %q is held by another object: %w", obj.Kind, obj.ID, obj.Key, ErrConflict)
	}
	q := `UPDATE objects SET key = ?, managed_by = ?, body = ?, revision = ?, updated_at = ? WHERE kind = ? AND id = ?`
	args := []any{nullKey(obj.Key), obj.ManagedBy, string(obj.Body), w.rev, w.now, obj.Kind, obj.ID}
	if ifRevision > 0 {
		q += ` AND revision = ?`
		args = append(args, ifRevision)
	}
	n, err := w.tx.exec(ctx, q, args...)
	if err != nil {
		return w.s.wrap(ctx, err, "update %s %s", obj.Kind, obj.ID)
	}
	if n == 0 {
		cur, err := w.Get(ctx, obj.Kind, obj.ID)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("store: update %s %s: %w", obj.Kind, obj.ID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("store: update %s %s: revision is %d, not %d: %w", obj.Kind, obj.ID, cur.Revision, ifRevision, ErrConflict)
	}
	w.record(obj.Kind, obj.ID, OpPut)
	return nil
}

// Delete removes an object; ErrNotFound when absent.
func (w *writeTx) Delete(ctx context.Context, kind, id string) error {
	n, err := w.tx.exec(ctx, `DELETE FROM objects WHERE kind = ? AND id = ?`, kind, id)
	if err != nil {
		return w.s.wrap(ctx, err, "delete %s %s", kind, id)
	}
	if n == 0 {
		return fmt.Errorf("store: delete %s %s: %w", kind, id, ErrNotFound)
	}
	w.record(kind, id, OpDelete)
	return nil
}

// changesBatch bounds the rows of one INSERT, under every engine's limit
// on bound parameters.
const changesBatch = 200

func (s *sqlStore) recordChanges(ctx context.Context, tx txn, rev int64, changes []Change) error {
	for len(changes) > 0 {
		n := min(len(changes), changesBatch)
		var b strings.Builder
		b.WriteString(`INSERT INTO changes (revision, kind, id, op) VALUES `)
		args := make([]any, 0, 4*n)
		for i, c := range changes[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?)")
			args = append(args, rev, c.Kind, c.ID, string(c.Op))
		}
		if _, err := tx.exec(ctx, b.String(), args...); err != nil {
			return err
		}
		changes = changes[n:]
	}
	return nil
}

// compact deletes the oldest change rows, keeping at least s.retention and
// never splitting a revision, and raises the compaction floor.
func (s *sqlStore) compact(ctx context.Context, tx txn) error {
	var cutoff int64
	err := tx.queryRow(ctx, `SELECT revision FROM changes ORDER BY revision DESC LIMIT 1 OFFSET ?`, s.retention-1).Scan(&cutoff)
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.exec(ctx, `DELETE FROM changes WHERE revision < ?`, cutoff); err != nil {
		return err
	}
	_, err = tx.exec(ctx, `UPDATE store_state SET compacted_through = ? WHERE id = 1 AND compacted_through < ?`, cutoff-1, cutoff-1)
	return err
}

// Changes lists changes after since in revision order. It never splits a
// revision: when limit would cut one, the result ends before it, or, when
// it is the first revision, holds all of it even beyond limit. limit <= 0
// means no limit.
func (s *sqlStore) Changes(ctx context.Context, since int64, limit int) ([]Change, error) {
	q := `SELECT revision, kind, id, op FROM changes WHERE revision > ? ORDER BY revision, kind, id`
	args := []any{since}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit+1)
	}
	out, err := s.scanChanges(ctx, q, args...)
	if err != nil {
		return nil, s.wrap(ctx, err, "list changes since %d", since)
	}
	if limit > 0 && len(out) > limit {
		last := out[limit-1].Revision
		if out[limit].Revision != last {
			out = out[:limit]
		} else if out[0].Revision != last {
			i := limit - 1
			for out[i].Revision == last {
				i--
			}
			out = out[:i+1]
		} else {
			out, err = s.scanChanges(ctx, `SELECT revision, kind, id, op FROM changes WHERE revision = ? ORDER BY kind, id`, last)
			if err != nil {
				return nil, s.wrap(ctx, err, "list changes of revision %d", last)
			}
		}
	}
	// Read the floor after the rows: a compaction in between then shows as
	// ErrCompacted instead of a silent gap.
	var floor int64
	if err := s.eng.reads().queryRow(ctx, `SELECT compacted_through FROM store_state WHERE id = 1`).Scan(&floor); err != nil {
		return nil, s.wrap(ctx, err, "list changes since %d: read compaction floor", since)
	}
	if since < floor {
		return nil, fmt.Errorf("store: list changes since %d: log starts after revision %d: %w", since, floor, ErrCompacted)
	}
	return out, nil
}

func (s *sqlStore) scanChanges(ctx context.Context, q string, args ...any) ([]Change, error) {
	rs, err := s.eng.reads().query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Change
	for rs.Next() {
		var c Change
		var op string
		if err := rs.Scan(&c.Revision, &c.Kind, &c.ID, &op); err != nil {
			return nil, err
		}
		c.Op = Op(op)
		out = append(out, c)
	}
	return out, rs.Err()
}

func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
