package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteBusyTimeoutMS is how long a SQLite statement waits for another
// connection's (or process's) lock before failing with SQLITE_BUSY.
const sqliteBusyTimeoutMS = 10000

// sqliteEngine keeps the store in one SQLite file in WAL mode. All writes
// go through a single connection whose transactions BEGIN IMMEDIATE, so
// writers queue in Go instead of failing with SQLITE_BUSY; reads use a
// separate pool and run concurrently against WAL snapshots. Other processes
// on the same file serialize on SQLite's write lock (busy timeout).
type sqliteEngine struct {
	path   string
	writer *sql.DB
	reader *sql.DB
	// readStmts and writeStmts keep each pool's prepared statements.
	readStmts, writeStmts *stmtCache
}

func openSQLite(ctx context.Context, cfg Config) (*sqliteEngine, error) {
	path := cfg.sqlitePath()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}
	// Create the file owner-only before SQLite does: it holds credential
	// hashes, and SQLite gives the -wal and -shm files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w: %w", path, ErrUnavailable, err)
	}
	f.Close()

	// synchronous=FULL makes each commit durable before it is
	// acknowledged, even against power loss.
	dsn := "file:" + path + fmt.Sprintf("?_pragma=busy_timeout(%d)", sqliteBusyTimeoutMS) +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(ON)"
	writer, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)
	reader, err := sql.Open("sqlite", dsn)
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	reader.SetMaxOpenConns(cfg.MaxConns)
	reader.SetMaxIdleConns(cfg.MaxConns)
	e := &sqliteEngine{path: path, writer: writer, reader: reader,
		readStmts: newStmtCache(reader), writeStmts: newStmtCache(writer)}
	// Switching a new file to WAL takes an exclusive lock without waiting
	// on the busy handler, so nodes opening one new file at once retry.
	deadline := time.Now().Add(cfg.ConnectTimeout)
	for attempt := 1; ; attempt++ {
		err := e.ping(ctx)
		if err == nil {
			return e, nil
		}
		if !isSQLiteBusy(err) || time.Now().After(deadline) || ctx.Err() != nil {
			e.close()
			return nil, wrapErr(ctx, e, err, "open sqlite "+path)
		}
		select {
		case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
		case <-ctx.Done():
		}
	}
}

func isSQLiteBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED)
}

func (e *sqliteEngine) name() string { return engineSQLite }

func (e *sqliteEngine) reads() querier  { return sqlQuerier{db: e.reader, stmts: e.readStmts} }
func (e *sqliteEngine) writes() querier { return sqlQuerier{db: e.writer, stmts: e.writeStmts} }

func (e *sqliteEngine) beginWrite(ctx context.Context) (txn, error) {
	tx, err := e.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		return nil, err
	}
	return sqlTxn{sqlQuerier{db: tx, stmts: e.writeStmts, tx: tx}, tx}, nil
}

func (e *sqliteEngine) beginRead(ctx context.Context) (txn, error) {
	// A deferred BEGIN: the WAL snapshot is fixed by the first read and
	// held until the end, so every read of the view agrees.
	tx, err := e.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return sqlTxn{sqlQuerier{db: tx, stmts: e.readStmts, tx: tx}, tx}, nil
}

func (e *sqliteEngine) classify(err error) errClass {
	if isNoRows(err) {
		return classNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return classConflict
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOTADB:
			return classUnavailable
		}
		return classOther
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return classUnavailable
	}
	return classOther
}

// bumpRevision needs no notification: this process learns of its own
// commits from Update, and other processes see them by polling.
func (e *sqliteEngine) bumpRevision(ctx context.Context, tx txn) (int64, error) {
	var rev int64
	err := tx.queryRow(ctx, bumpRevisionSQL).Scan(&rev)
	return rev, err
}

func (e *sqliteEngine) listen(context.Context, func(int64), func()) {}

// migrate holds SQLite's write lock (BEGIN IMMEDIATE) for the whole
// migration, so two processes opening one new file apply it once.
func (e *sqliteEngine) migrate(ctx context.Context, ms []migration) error {
	tx, err := e.beginWrite(ctx)
	if err != nil {
		return wrapErr(ctx, e, err, "migrate: begin")
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }() // fails harmlessly after commit
	current, err := schemaVersion(ctx, tx, ms)
	if err != nil {
		return wrapErr(ctx, e, err, "migrate "+e.path)
	}
	for _, m := range ms[current:] {
		if err := applyMigration(ctx, tx, m); err != nil {
			return wrapErr(ctx, e, err, "migrate "+e.path)
		}
	}
	if err := tx.commit(ctx); err != nil {
		return wrapErr(ctx, e, err, "migrate: commit")
	}
	return nil
}

func (e *sqliteEngine) ping(ctx context.Context) error {
	if err := e.writer.PingContext(ctx); err != nil {
		return err
	}
	return e.reader.PingContext(ctx)
}

func (e *sqliteEngine) close() error {
	e.readStmts.close()
	e.writeStmts.close()
	return errors.Join(e.reader.Close(), e.writer.Close())
}

// sqlQuerier adapts database/sql pools and transactions. On a pool,
// statements are prepared once and kept (stmts): SQLite parses and plans
// a statement every time it is prepared, which costs as much as running a
// small query.
type sqlQuerier struct {
	db interface {
		ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
	}
	stmts *stmtCache
	// tx is set in a transaction: the pool's prepared statements run in it
	// (database/sql binds them to the transaction's connection).
	tx *sql.Tx
}

// stmt returns the prepared statement for s, bound to the transaction
// when there is one; nil when s runs unprepared.
func (q sqlQuerier) stmt(ctx context.Context, s string) *sql.Stmt {
	if q.tx == nil {
		return q.stmts.get(ctx, s)
	}
	// In a transaction the pool may have no other connection to prepare
	// on (the writer has one): use what is prepared, and note the rest to
	// prepare once the transaction has ended.
	st := q.stmts.lookup(s)
	if st == nil {
		return nil
	}
	return q.tx.StmtContext(ctx, st)
}

func (q sqlQuerier) exec(ctx context.Context, s string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := q.stmt(ctx, s); st != nil {
		res, err = st.ExecContext(ctx, args...)
	} else {
		res, err = q.db.ExecContext(ctx, s, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q sqlQuerier) query(ctx context.Context, s string, args ...any) (rows, error) {
	var rs *sql.Rows
	var err error
	if st := q.stmt(ctx, s); st != nil {
		rs, err = st.QueryContext(ctx, args...)
	} else {
		rs, err = q.db.QueryContext(ctx, s, args...)
	}
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

func (q sqlQuerier) queryRow(ctx context.Context, s string, args ...any) row {
	if st := q.stmt(ctx, s); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.db.QueryRowContext(ctx, s, args...)
}

// stmtCache keeps the prepared statements of one pool, by query text. It
// is bounded (queries built from filters vary, but not without limit);
// beyond the bound, queries are prepared each time as before.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts sync.Map // string → *sql.Stmt
	n     int
	want  sync.Map // string → struct{}: seen in a transaction, not yet prepared
}

// lookup returns the prepared statement for q without preparing one,
// noting q to prepare later.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	if st, ok := c.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	c.want.Store(q, struct{}{})
	return nil
}

// prepareWanted prepares what transactions asked for, once the pool's
// connection is free again.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	if c == nil {
		return
	}
	c.want.Range(func(k, _ any) bool {
		c.want.Delete(k)
		c.get(ctx, k.(string))
		return true
	})
}

const maxCachedStmts = 512

func newStmtCache(db *sql.DB) *stmtCache { return &stmtCache{db: db} }

// get returns the prepared statement for q, preparing it on first use;
// nil when it cannot (the caller runs q unprepared).
func (c *stmtCache) get(ctx context.Context, q string) *sql.Stmt {
	if c == nil {
		return nil
	}
	if st, ok := c.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts.Load(q); ok {
		return st.(*sql.Stmt)
	}
	if c.n >= maxCachedStmts {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil // the unprepared run reports the error
	}
	c.stmts.Store(q, st)
	c.n++
	return st
}

func (c *stmtCache) close() {
	c.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
}

type sqlRows struct{ rs *sql.Rows }

func (r sqlRows) Next() bool             { return r.rs.Next() }
func (r sqlRows) Scan(dest ...any) error { return r.rs.Scan(dest...) }
func (r sqlRows) Err() error             { return r.rs.Err() }
func (r sqlRows) Close()                 { _ = r.rs.Close() }

type sqlTxn struct {
	sqlQuerier
	tx *sql.Tx
}

func (t sqlTxn) commit(ctx context.Context) error {
	err := t.tx.Commit()
	t.stmts.prepareWanted(context.WithoutCancel(ctx))
	return err
}

func (t sqlTxn) rollback(ctx context.Context) error {
	err := t.tx.Rollback()
	t.stmts.prepareWanted(context.WithoutCancel(ctx))
	return err
}
