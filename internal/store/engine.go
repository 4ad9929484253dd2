package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// The SQL in this package is written once, with "?" placeholders, and runs
// on both engines: the PostgreSQL adapter rebinds it to $n. An engine only
// supplies connections, transactions, error classification, notification
// and migration locking.

// rows is a result set being read.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// row is a single-row result; Scan returns a no-rows error when empty.
type row interface {
	Scan(dest ...any) error
}

// querier runs statements on a pool, a connection or a transaction.
type querier interface {
	exec(ctx context.Context, q string, args ...any) (int64, error)
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

// txn is a database transaction.
type txn interface {
	querier
	commit(ctx context.Context) error
	rollback(ctx context.Context) error
}

// errClass is what an engine makes of a driver error.
type errClass int

const (
	classOther errClass = iota
	classNotFound
	classConflict
	classUnavailable
)

// engine is what differs between SQLite and PostgreSQL.
type engine interface {
	name() string
	// reads runs reads outside a transaction; writes runs single-statement
	// writes (tokens, credentials, audit) outside an Update.
	reads() querier
	writes() querier
	// beginWrite starts a transaction that may write; beginRead starts a
	// read-only transaction that sees one consistent snapshot.
	beginWrite(ctx context.Context) (txn, error)
	beginRead(ctx context.Context) (txn, error)
	classify(err error) errClass
	// bumpRevision increments the revision row in tx, which also makes tx
	// the only writer until it ends, and returns the new revision. Other
	// nodes are told of it when, and only if, tx commits.
	bumpRevision(ctx context.Context, tx txn) (int64, error)
	// listen blocks until ctx ends, calling wake with each revision other
	// nodes announce and resync after it (re)connects, when it may have
	// missed some. Engines without notifications return at once.
	listen(ctx context.Context, wake func(rev int64), resync func())
	// migrate brings the schema to the newest of ms under a lock.
	migrate(ctx context.Context, ms []migration) error
	ping(ctx context.Context) error
	close() error
}

// sqlStore implements Store on any engine.
type sqlStore struct {
	eng       engine
	log       *slog.Logger
	retention int
	// compactEvery is how many revisions pass between compactions.
	compactEvery int64
	feed         *feed
	// writer admits one Update of this node at a time. Updates serialize
	// on the revision row anyway; queueing here instead of in the database
	// keeps waiting writers from holding pooled connections that readers
	// (and the running Update's own fn) need.
	writer chan struct{}
	// audit group-commits AppendAudit calls.
	audit auditBatcher
}

var _ Store = (*sqlStore)(nil)

func newSQLStore(eng engine, cfg Config, log *slog.Logger) *sqlStore {
	every := int64(cfg.ChangeRetention / 10)
	every = max(1, min(every, 1000))
	s := &sqlStore{eng: eng, log: log, retention: cfg.ChangeRetention, compactEvery: every, writer: make(chan struct{}, 1)}
	s.audit.wake = make(chan struct{}, 1)
	s.feed = newFeed(s, cfg.PollInterval, log)
	return s
}

// Engine names the engine: "sqlite" or "postgres".
func (s *sqlStore) Engine() string { return s.eng.name() }

// Ping reports whether the database answers.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.eng.ping(ctx); err != nil {
		return s.wrap(ctx, err, "ping %s", s.eng.name())
	}
	return nil
}

// Close stops the change feed and closes every connection.
func (s *sqlStore) Close() error {
	s.feed.close()
	if err := s.eng.close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.eng.name(), err)
	}
	return nil
}

// wrap turns a driver error into a store error that says what failed and
// wraps the matching sentinel: "store: get user/1234: not found".
func (s *sqlStore) wrap(ctx context.Context, err error, format string, args ...any) error {
	return wrapErr(ctx, s.eng, err, fmt.Sprintf(format, args...))
}

func wrapErr(ctx context.Context, eng engine, err error, what string) error {
	if err == nil {
		return nil
	}
	for _, sentinel := range []error{ErrNotFound, ErrConflict, ErrUnavailable, ErrCompacted, ErrSchemaTooNew} {
		if errors.Is(err, sentinel) {
			return fmt.Errorf("store: %s: %w", what, err)
		}
	}
	switch eng.classify(err) {
	case classNotFound:
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	case classConflict:
		return fmt.Errorf("store: %s: %w: %s", what, ErrConflict, err)
	case classUnavailable:
		// A connection attempt cut short by the caller's own deadline is
		// still the caller's error, so it stays visible as such.
		if ctx != nil && ctx.Err() != nil {
			return fmt.Errorf("store: %s: %w: %w", what, ErrUnavailable, ctx.Err())
		}
		return fmt.Errorf("store: %s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", what, err)
}

// isNoRows reports whether err says a single-row query found nothing; both
// database/sql and pgx errors match sql.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// redactingError hides a secret that a driver error might echo, while
// keeping errors.Is and errors.As working.
type redactingError struct {
	err    error
	secret string
}

func (e *redactingError) Error() string {
	return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx")
}

func (e *redactingError) Unwrap() error { return e.err }

// redact wraps err so that its message never contains secret.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &redactingError{err: err, secret: secret}
}
