package store

import (
	"context"
	"fmt"
	"log/slog"
)

// Open connects to the database cfg.DSN names, choosing the engine from
// it ("postgres://" or "postgresql://": PostgreSQL; anything else: a SQLite
// file), applies pending migrations under a lock and returns the store.
// It keeps retrying an unreachable PostgreSQL server for
// cfg.ConnectTimeout, then fails with an error wrapping ErrUnavailable. It
// fails with an error wrapping ErrSchemaTooNew when a newer binary has
// migrated the database. log may be nil. Errors and logs never hold the
// DSN's password.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engineName := cfg.engine()
	log = log.With("component", "store", "engine", engineName)
	ms, err := loadMigrations(engineName)
	if err != nil {
		return nil, err
	}
	var eng engine
	switch engineName {
	case enginePostgres:
		eng, err = openPostgres(ctx, cfg, log)
	default:
		eng, err = openSQLite(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if err := eng.migrate(ctx, ms); err != nil {
		eng.close()
		return nil, err
	}
	s := newSQLStore(eng, cfg, log)
	if err := s.integrateAuditBacklog(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// String names the engine and database, without the password.
func (s *sqlStore) String() string {
	return fmt.Sprintf("store(%s)", s.eng.name())
}
