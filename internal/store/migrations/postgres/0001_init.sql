-- Verity store schema, version 1 (PostgreSQL).
-- Times are unix microseconds, UTC, as in the SQLite schema so both engines
-- round-trip identical values. Bodies are canonical JSON kept as text (not
-- jsonb, which would reorder keys). Identifiers use the "C" collation so
-- ordering and paging are byte order, as in SQLite.

-- The single row holds the store revision, bumped by every writing Update
-- (the row lock also serializes writers, so revisions commit in order), and
-- the compaction floor: every change with revision <= compacted_through may
-- be gone.
CREATE TABLE store_state (
	id                integer PRIMARY KEY CHECK (id = 1),
	revision          bigint NOT NULL,
	compacted_through bigint NOT NULL
);
INSERT INTO store_state (id, revision, compacted_through) VALUES (1, 0, 0);

CREATE TABLE objects (
	kind       text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	key        text COLLATE "C",
	managed_by text NOT NULL DEFAULT '',
	body       text NOT NULL,
	revision   bigint NOT NULL,
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX objects_kind_key ON objects (kind, key) WHERE key IS NOT NULL;

CREATE TABLE changes (
	revision bigint NOT NULL,
	kind     text COLLATE "C" NOT NULL,
	id       text COLLATE "C" NOT NULL,
	op       text NOT NULL CHECK (op IN ('put', 'delete')),
	PRIMARY KEY (revision, kind, id)
);

CREATE TABLE api_tokens (
	hash         bytea PRIMARY KEY,
	principal_id text NOT NULL,
	created_at   bigint NOT NULL,
	expires_at   bigint,
	description  text NOT NULL DEFAULT ''
);
CREATE INDEX api_tokens_principal ON api_tokens (principal_id);
CREATE INDEX api_tokens_expires ON api_tokens (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE credentials (
	principal_id text NOT NULL,
	type         text NOT NULL,
	hash         text NOT NULL,
	updated_at   bigint NOT NULL,
	PRIMARY KEY (principal_id, type)
);

-- Append-only: the trigger refuses any update, delete or truncate.
CREATE TABLE audit_events (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	event_time bigint NOT NULL,
	request_id text NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	target     text NOT NULL,
	result     text NOT NULL,
	status     integer NOT NULL,
	details    text
);
CREATE INDEX audit_events_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
	FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
	FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
