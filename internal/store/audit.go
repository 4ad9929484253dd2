package store

import (
	"context"
	"strings"
	"time"
)

// Audit list limits.
const (
	// DefaultAuditLimit is how many events ListAudit returns when
	// AuditQuery.Limit is zero.
	DefaultAuditLimit = 100
	// MaxAuditLimit caps AuditQuery.Limit.
	MaxAuditLimit = 1000
)

// AppendAudit appends e and returns the seq the database gave it. A zero
// Time is set to now.
//
// On PostgreSQL, seq comes from an identity column: appends run
// concurrently, so a reader tailing with AfterSeq may see seq N+1 a moment
// before seq N commits, and seqs of failed appends are skipped.
func (s *sqlStore) AppendAudit(ctx context.Context, e AuditEvent) (int64, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	var details any
	if e.Details != nil {
		details = string(e.Details)
	}
	var seq int64
	err := s.eng.writes().queryRow(ctx, `INSERT INTO audit_events
		(event_time, request_id, actor, action, target, result, status, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
		toMicros(e.Time), e.RequestID, e.Actor, e.Action, e.Target, e.Result, e.Status, details).Scan(&seq)
	if err != nil {
		return 0, s.wrap(ctx, err, "append audit event %s", e.Action)
	}
	return seq, nil
}

// ListAudit returns the events q selects, newest first.
func (s *sqlStore) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	var where []string
	var args []any
	if q.AfterSeq > 0 {
		where = append(where, "seq > ?")
		args = append(args, q.AfterSeq)
	}
	if q.BeforeSeq > 0 {
		where = append(where, "seq < ?")
		args = append(args, q.BeforeSeq)
	}
	if q.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, q.Actor)
	}
	if q.Action != "" {
		where = append(where, "action = ?")
		args = append(args, q.Action)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	sql := `SELECT seq, event_time, request_id, actor, action, target, result, status, details FROM audit_events`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY seq DESC LIMIT ?`
	args = append(args, limit)

	rs, err := s.eng.reads().query(ctx, sql, args...)
	if err != nil {
		return nil, s.wrap(ctx, err, "list audit events")
	}
	defer rs.Close()
	var out []AuditEvent
	for rs.Next() {
		var e AuditEvent
		var at int64
		var details *string
		if err := rs.Scan(&e.Seq, &at, &e.RequestID, &e.Actor, &e.Action, &e.Target, &e.Result, &e.Status, &details); err != nil {
			return nil, s.wrap(ctx, err, "list audit events")
		}
		e.Time = fromMicros(at)
		if details != nil {
			e.Details = []byte(*details)
		}
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, s.wrap(ctx, err, "list audit events")
	}
	return out, nil
}
