-- Verity store schema, version 1 (SQLite).
-- Times are unix microseconds, UTC. Bodies are canonical JSON kept as text,
-- byte for byte as the caller wrote them.

-- The single row holds the store revision, bumped by every writing Update
-- (the bump also serializes writers), and the compaction floor of the
-- change log: every change with revision <= compacted_through may be gone.
CREATE TABLE store_state (
	id                INTEGER PRIMARY KEY CHECK (id = 1),
	revision          INTEGER NOT NULL,
	compacted_through INTEGER NOT NULL
) STRICT;
INSERT INTO store_state (id, revision, compacted_through) VALUES (1, 0, 0);

CREATE TABLE objects (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	key        TEXT,
	managed_by TEXT NOT NULL DEFAULT '',
	body       TEXT NOT NULL,
	revision   INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX objects_kind_key ON objects (kind, key) WHERE key IS NOT NULL;

CREATE TABLE changes (
	revision INTEGER NOT NULL,
	kind     TEXT NOT NULL,
	id       TEXT NOT NULL,
	op       TEXT NOT NULL CHECK (op IN ('put', 'delete')),
	PRIMARY KEY (revision, kind, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE api_tokens (
	hash         BLOB PRIMARY KEY,
	principal_id TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	description  TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE credentials (
	principal_id TEXT NOT NULL,
	type         TEXT NOT NULL,
	hash         TEXT NOT NULL,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (principal_id, type)
) STRICT;

-- Append-only: AUTOINCREMENT never reuses a seq, and the triggers refuse
-- any update or delete.
CREATE TABLE audit_events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	event_time INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	target     TEXT NOT NULL,
	result     TEXT NOT NULL,
	status     INTEGER NOT NULL,
	details    TEXT
) STRICT;
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;
