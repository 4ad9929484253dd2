package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgChannel is the LISTEN/NOTIFY channel that carries new revisions.
const pgChannel = "verity_changes"

// pgMigrationLockKey is the pg_advisory_lock key that serializes
// migrations of one database across nodes ("verity" in ASCII).
const pgMigrationLockKey int64 = 0x766572697479

// pgEngine keeps the store in PostgreSQL through a pgx pool. Writers
// serialize on the store_state row lock; a dedicated connection LISTENs
// for other nodes' commits.
type pgEngine struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the listener's own connection
	target   string          // host:port/database, for messages; no secrets
	password string          // only to scrub it from driver errors
	log      *slog.Logger
	poolQ    pgQuerier // pool as a querier
	rebinds  sync.Map  // "?" query -> "$n" query
}

// pgTarget names a server and database for logs and errors, never the
// password.
func pgTarget(c *pgconn.Config) string {
	return fmt.Sprintf("%s:%d/%s (user %s)", c.Host, c.Port, c.Database, c.User)
}

func openPostgres(ctx context.Context, cfg Config, log *slog.Logger) (*pgEngine, error) {
	password := cfg.password()
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// The parse error may quote the DSN; say only what is wrong.
		var pe *pgconn.ParseConfigError
		if errors.As(err, &pe) {
			err = pe.Unwrap()
			if err == nil {
				err = errors.New("invalid connection string")
			}
		}
		return nil, fmt.Errorf("store: parse postgres dsn %s: %w", cfg.RedactedDSN(), redact(err, password))
	}
	if pcfg.ConnConfig.Password != "" {
		password = pcfg.ConnConfig.Password // also from PGPASSWORD or a pgpass file
	}
	pcfg.MaxConns = int32(cfg.MaxConns)
	pcfg.ConnConfig.ConnectTimeout = min(cfg.ConnectTimeout, 5*time.Second)
	e := &pgEngine{
		connCfg:  pcfg.ConnConfig.Copy(),
		target:   pgTarget(&pcfg.ConnConfig.Config),
		password: password,
		log:      log,
	}
	e.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres %s: %w", e.target, redact(err, password))
	}
	e.poolQ = pgQuerier{e, e.pool}
	if err := e.connect(ctx, cfg.ConnectTimeout); err != nil {
		e.pool.Close()
		return nil, err
	}
	return e, nil
}

// connect pings the server until it answers or timeout passes, backing
// off between attempts. Errors that waiting will not fix (bad password,
// no such database) end it at once.
func (e *pgEngine) connect(ctx context.Context, timeout time.Duration) error {
	start := time.Now()
	deadline := start.Add(timeout)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithDeadline(ctx, deadline)
		err := e.pool.Ping(actx)
		cancel()
		if err == nil {
			return nil
		}
		err = redact(err, e.password)
		if ctx.Err() != nil {
			return fmt.Errorf("store: connect to postgres %s: %w: %w", e.target, ErrUnavailable, ctx.Err())
		}
		if e.classify(err) != classUnavailable && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("store: connect to postgres %s: %w", e.target, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("store: connect to postgres %s: gave up after %s and %d attempts: %w: %w",
				e.target, time.Since(start).Round(time.Millisecond), attempt, ErrUnavailable, err)
		}
		wait := min(backoff, left)
		e.log.WarnContext(ctx, "store: postgres unreachable; retrying",
			"target", e.target, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (e *pgEngine) name() string { return enginePostgres }

func (e *pgEngine) reads() querier  { return e.poolQ }
func (e *pgEngine) writes() querier { return e.poolQ }

func (e *pgEngine) beginWrite(ctx context.Context) (txn, error) {
	// READ COMMITTED is enough: the revision row lock taken first
	// serializes writers, and each later statement sees their commits.
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return pgTxn{pgQuerier{e, tx}, tx}, nil
}

func (e *pgEngine) beginRead(ctx context.Context) (txn, error) {
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	return pgTxn{pgQuerier{e, tx}, tx}, nil
}

func (e *pgEngine) classify(err error) errClass {
	if isNoRows(err) {
		return classNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return classConflict
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin/crash shutdown, cannot connect now
			pe.Code == "53300": // too many connections
			return classUnavailable
		}
		return classOther
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		pgconn.SafeToRetry(err), pgconn.Timeout(err):
		return classUnavailable
	}
	return classOther
}

// bumpRevision also queues the NOTIFY in the same statement, saving a
// round trip while holding the writers' lock. PostgreSQL delivers it at
// commit and drops it on rollback.
func (e *pgEngine) bumpRevision(ctx context.Context, tx txn) (int64, error) {
	var rev int64
	err := tx.queryRow(ctx, bumpRevisionSQL+`, pg_notify('`+pgChannel+`', revision::text)`).Scan(&rev, nil)
	return rev, err
}

// listen keeps one connection LISTENing, reconnecting with backoff when it
// is lost; polling covers the gaps, and resync runs after each connect.
func (e *pgEngine) listen(ctx context.Context, wake func(int64), resync func()) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		connected, err := e.listenOnce(ctx, wake, resync)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = 100 * time.Millisecond
		}
		e.log.WarnContext(ctx, "store: change listener lost its connection; reconnecting",
			"target", e.target, "retry_in", backoff, "err", redact(err, e.password))
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (e *pgEngine) listenOnce(ctx context.Context, wake func(int64), resync func()) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, e.connCfg.Copy())
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgChannel); err != nil {
		return false, err
	}
	resync() // notifications sent while we were away are lost
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, err
		}
		if rev, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
			wake(rev)
		}
	}
}

// migrate holds a session advisory lock on one dedicated connection while
// it migrates, so nodes starting together apply each migration once. The
// lock goes with the session if the connection dies.
func (e *pgEngine) migrate(ctx context.Context, ms []migration) error {
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return wrapErr(ctx, e, redact(err, e.password), "migrate: acquire connection")
	}
	defer conn.Release()
	q := pgQuerier{e, conn}
	if _, err := q.exec(ctx, `SELECT pg_advisory_lock(?)`, pgMigrationLockKey); err != nil {
		return wrapErr(ctx, e, err, "migrate: take lock")
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := q.exec(uctx, `SELECT pg_advisory_unlock(?)`, pgMigrationLockKey); err != nil {
			// Closing the session releases the lock instead; the pool
			// then drops the closed connection on Release.
			_ = conn.Conn().Close(uctx)
		}
	}()
	current, err := schemaVersion(ctx, q, ms)
	if err != nil {
		return wrapErr(ctx, e, err, "migrate "+e.target)
	}
	for _, m := range ms[current:] {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return wrapErr(ctx, e, err, "migrate: begin")
		}
		if err := applyMigration(ctx, pgQuerier{e, tx}, m); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return wrapErr(ctx, e, err, "migrate "+e.target)
		}
		if err := tx.Commit(ctx); err != nil {
			return wrapErr(ctx, e, err, "migrate: commit "+m.name)
		}
		e.log.InfoContext(ctx, "store: applied migration", "migration", m.name)
	}
	return nil
}

func (e *pgEngine) ping(ctx context.Context) error { return e.pool.Ping(ctx) }

func (e *pgEngine) close() error {
	e.pool.Close()
	return nil
}

// rebind turns "?" placeholders into "$1", "$2"... The store's SQL has no
// "?" anywhere else.
func (e *pgEngine) rebind(q string) string {
	if v, ok := e.rebinds.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	out := b.String()
	if n <= 64 { // do not cache the long generated batches
		e.rebinds.Store(q, out)
	}
	return out
}

// pgxQuerier is what pgxpool.Pool, pgxpool.Conn and pgx.Tx share.
type pgxQuerier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pgQuerier adapts pgx to querier and scrubs the password from errors.
type pgQuerier struct {
	e *pgEngine
	q pgxQuerier
}

func (q pgQuerier) exec(ctx context.Context, s string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, q.e.rebind(s), args...)
	if err != nil {
		return 0, redact(err, q.e.password)
	}
	return tag.RowsAffected(), nil
}

func (q pgQuerier) query(ctx context.Context, s string, args ...any) (rows, error) {
	rs, err := q.q.Query(ctx, q.e.rebind(s), args...)
	if err != nil {
		return nil, redact(err, q.e.password)
	}
	return rs, nil
}

func (q pgQuerier) queryRow(ctx context.Context, s string, args ...any) row {
	return pgRow{q.q.QueryRow(ctx, q.e.rebind(s), args...), q.e.password}
}

type pgRow struct {
	r        pgx.Row
	password string
}

func (r pgRow) Scan(dest ...any) error { return redact(r.r.Scan(dest...), r.password) }

type pgTxn struct {
	pgQuerier
	tx pgx.Tx
}

// copyAudit writes queued audit rows with COPY, which PostgreSQL takes
// several times faster than multi-row INSERTs. Rows are in
// auditInsert's column order.
func (t pgTxn) copyAudit(ctx context.Context, rows [][]any) error {
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditInsertColumns, pgx.CopyFromRows(rows))
	return redact(err, t.e.password)
}

func (t pgTxn) commit(ctx context.Context) error   { return t.tx.Commit(ctx) }
func (t pgTxn) rollback(ctx context.Context) error { return t.tx.Rollback(ctx) }
