package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// AppendAudit appends e and returns the seq the database gave it, once the
// event is durable. A zero Time is set to now.
//
// Appends are group-committed: concurrent callers' events are written
// together in one transaction by whichever caller arrives first (the
// leader), so a busy node pays one fsync per batch rather than one per
// event. Within a node, seqs follow arrival order. Across PostgreSQL
// nodes seq comes from an identity column, so a reader tailing with
// AfterSeq may see seq N+1 a moment before another node's N commits.
func (s *sqlStore) AppendAudit(ctx context.Context, e AuditEvent) (int64, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	req := &auditReq{event: e, hash: AuditLeafHash(&e), done: make(chan struct{})}
	b := &s.audit
	b.mu.Lock()
	b.pending = append(b.pending, req)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead {
		s.flushAudit(ctx, false)
	} else {
		// A flush of queued events may be lingering: this one is waited for.
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	select {
	case <-req.done:
		return req.seq, req.err
	case <-ctx.Done():
		// The event may still be written by the batch it joined.
		return 0, fmt.Errorf("store: append audit event %s: %w", e.Action, ctx.Err())
	}
}

// MaxAuditBacklog bounds the events waiting for a group commit that
// AppendAuditAsync queues: past it, it refuses, and the caller fails
// closed rather than lose an event silently.
const MaxAuditBacklog = 10_000

// ErrAuditBacklog means the audit log cannot keep up.
var ErrAuditBacklog = errors.New("audit log backlog is full")

// AppendAuditAsync queues e for the next group commit and returns without
// waiting for it to be durable: for events so frequent that waiting for
// each commit would bound throughput by the disk's latency (tokens
// redeemed at the OpenID Connect provider). It refuses with
// ErrAuditBacklog when MaxAuditBacklog events are already waiting. A
// failed write is logged and counted; the events of a node that crashes
// before the next commit (milliseconds) are lost, which is why decisions
// that must never go unrecorded use AppendAudit.
func (s *sqlStore) AppendAuditAsync(ctx context.Context, e AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	// The leaf is hashed here, by the caller, not in the group commit
	// that every node's events queue for. Nobody waits: no done channel.
	req := &auditReq{event: e, hash: AuditLeafHash(&e), async: true}
	b := &s.audit
	b.mu.Lock()
	if len(b.pending) >= MaxAuditBacklog {
		b.mu.Unlock()
		return fmt.Errorf("store: append audit event %s: %w", e.Action, ErrAuditBacklog)
	}
	b.pending = append(b.pending, req)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead {
		go s.flushAudit(context.WithoutCancel(ctx), true)
	}
	return nil
}

// auditBatcher collects audit events waiting to be written.
type auditBatcher struct {
	mu       sync.Mutex
	pending  []*auditReq
	flushing bool // a leader is writing; new events wait for its next batch
	// wake ends a lingering flush when an event somebody waits for joins.
	wake chan struct{}
	// tail caches the tree's partial tiles between group commits.
	tail tailTiles
}

type auditReq struct {
	event AuditEvent
	hash  []byte // the event's leaf hash
	seq   int64
	err   error
	done  chan struct{}
	async bool // nobody waits: a failure is logged
}

// maxAuditBatch bounds one group commit.
const maxAuditBatch = 2048

// auditLinger is how long a flush of queued events only (nobody waits for
// them) waits for more before it writes: a commit costs an fsync and the
// rewrite of the pages it touches, so a busy proxy writes its decisions in
// a few commits of many events rather than many of a few. It bounds what a
// crash can lose beyond what is being written.
const auditLinger = 10 * time.Millisecond

// flushAudit writes batches until no event is waiting. The batch does not
// inherit the leader's cancellation: other callers' events ride on it.
// A flush started by a queued event (linger) waits up to auditLinger
// before a batch of queued events smaller than maxAuditBatch, unless an
// event somebody waits for joins.
func (s *sqlStore) flushAudit(ctx context.Context, linger bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	b := &s.audit
	var timer *time.Timer
	for {
		if linger {
			b.mu.Lock()
			wait := len(b.pending) < maxAuditBatch && allAsync(b.pending)
			b.mu.Unlock()
			if wait {
				if timer == nil {
					timer = time.NewTimer(auditLinger)
					defer timer.Stop()
				} else {
					timer.Reset(auditLinger)
				}
				select {
				case <-timer.C:
				case <-b.wake:
				}
			}
		}
		b.mu.Lock()
		n := min(len(b.pending), maxAuditBatch)
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		if n == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		err := s.writeAudit(ctx, batch)
		lost := 0
		for _, r := range batch {
			if err != nil {
				r.seq, r.err = 0, err
				if r.async {
					lost++
				}
			}
			if r.done != nil {
				close(r.done)
			}
		}
		if lost > 0 {
			s.log.ErrorContext(ctx, "store: audit events queued without waiting could not be written", "events", lost, "err", err)
		}
	}
}

// writeAudit inserts a batch in one transaction, setting each event's seq.
func (s *sqlStore) writeAudit(ctx context.Context, batch []*auditReq) error {
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return fmt.Errorf("store: append audit events: wait for the writer: %w", ctx.Err())
	}
	tx, err := s.eng.beginWrite(ctx)
	if err != nil {
		return s.wrap(ctx, err, "append audit events: begin")
	}
	// The tree's lock numbers the batch: leaf indices follow on from the
	// tree's size, in batch order, and the leaves are hashed into the tree
	// in the same transaction.
	tree, err := lockAuditTree(ctx, tx)
	if err != nil {
		_ = tx.rollback(ctx)
		return s.wrap(ctx, err, "append audit events: lock the audit tree")
	}
	hashes := make([][]byte, len(batch))
	for i, r := range batch {
		r.event.Index = int64(tree.size) + int64(i)
		hashes[i] = r.hash
	}
	copier, canCopy := tx.(auditCopier)
	for i := 0; i < len(batch); {
		r := batch[i]
		if r.async && canCopy {
			// The run of queued events goes in one COPY.
			n := 0
			for i+n < len(batch) && batch[i+n].async {
				n++
			}
			rows := make([][]any, n)
			args := make([]any, 0, n*auditColumns)
			for k, r := range batch[i : i+n] {
				e := &r.event
				var details any
				if e.Details != nil {
					details = e.Details // COPY takes the bytes as they are
				}
				args = append(args, e.Index, toMicros(e.Time), e.RequestID, e.Actor, e.Action, e.Target, e.Result, e.Status, details)
				rows[k] = args[k*auditColumns : (k+1)*auditColumns : (k+1)*auditColumns]
			}
			if err := copier.copyAudit(ctx, rows); err != nil {
				_ = tx.rollback(ctx)
				return s.wrap(ctx, err, "append audit events %s", r.event.Action)
			}
			i += n
			continue
		}
		if r.async {
			// Nobody reads the seq of a queued event: a run of them goes
			// in multi-row INSERTs, without RETURNING.
			n := 1
			for _, size := range auditRowsPerInsert {
				if i+size <= len(batch) && allAsync(batch[i:i+size]) {
					n = size
					break
				}
			}
			args := make([]any, 0, n*auditColumns)
			for _, r := range batch[i : i+n] {
				args = appendAuditArgs(args, &r.event)
			}
			if _, err := tx.exec(ctx, auditInsert(n), args...); err != nil {
				_ = tx.rollback(ctx)
				return s.wrap(ctx, err, "append audit events %s", r.event.Action)
			}
			i += n
			continue
		}
		if err := tx.queryRow(ctx, auditInsert(1)+" RETURNING seq", appendAuditArgs(nil, &r.event)...).Scan(&r.seq); err != nil {
			_ = tx.rollback(ctx)
			return s.wrap(ctx, err, "append audit event %s", r.event.Action)
		}
		i++
	}
	written, err := appendAuditLeaves(ctx, tx, &tree, hashes, &s.audit.tail)
	if err != nil {
		_ = tx.rollback(ctx)
		return s.wrap(ctx, err, "append audit events: hash into the audit tree")
	}
	if err := tx.commit(ctx); err != nil {
		s.audit.tail.keep(nil)
		return s.wrap(ctx, err, "append audit events: commit")
	}
	s.audit.tail.keep(written)
	return nil
}

// auditRowsPerInsert are the row counts of the multi-row INSERTs queued
// events are written with, largest first: a few fixed statements, each
// prepared once per connection.
var auditRowsPerInsert = []int{64, 16, 4, 1}

// auditColumns is the number of values one audit row binds.
const auditColumns = 9

// auditCopier is a transaction that can write queued audit rows in bulk
// (PostgreSQL's COPY).
type auditCopier interface {
	copyAudit(ctx context.Context, rows [][]any) error
}

// auditInsertColumns are the columns an audit row binds, in order.
var auditInsertColumns = []string{"leaf_index", "event_time", "request_id", "actor", "action", "target", "result", "status", "details"}

// auditInserts holds the INSERT statement of each row count.
var auditInserts = func() map[int]string {
	m := map[int]string{}
	for _, n := range auditRowsPerInsert {
		row := "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
		m[n] = "INSERT INTO audit_events (" + strings.Join(auditInsertColumns, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	}
	return m
}()

func auditInsert(rows int) string { return auditInserts[rows] }

func allAsync(rs []*auditReq) bool {
	for _, r := range rs {
		if !r.async {
			return false
		}
	}
	return true
}

// appendAuditArgs appends the values of e's row, in auditInsert's order.
func appendAuditArgs(args []any, e *AuditEvent) []any {
	var details any
	if e.Details != nil {
		details = string(e.Details)
	}
	return append(args, e.Index, toMicros(e.Time), e.RequestID, e.Actor, e.Action, e.Target, e.Result, e.Status, details)
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
		// With an actor, the actor's index is the one to walk: a user's
		// sign-ins are few among everyone's, and the action index would
		// read back through all of them (the concatenation keeps the
		// planners of both engines off the action index).
		if q.Actor != "" {
			where = append(where, "action || '' = ?")
		} else {
			where = append(where, "action = ?")
		}
		args = append(args, q.Action)
	}
	if q.Target != "" {
		where = append(where, "target = ?")
		args = append(args, q.Target)
	}
	if q.Result != "" {
		where = append(where, "result = ?")
		args = append(args, q.Result)
	}
	if !q.Since.IsZero() {
		where = append(where, "event_time >= ?")
		args = append(args, toMicros(q.Since))
	}
	if !q.Until.IsZero() {
		where = append(where, "event_time <= ?")
		args = append(args, toMicros(q.Until))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultAuditLimit
	}
	limit = min(limit, MaxAuditLimit)
	sql := `SELECT ` + auditColumnsSelect + ` FROM audit_events`
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
		e, err := scanAuditEvent(rs)
		if err != nil {
			return nil, s.wrap(ctx, err, "list audit events")
		}
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, s.wrap(ctx, err, "list audit events")
	}
	return out, nil
}
