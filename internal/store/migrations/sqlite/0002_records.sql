-- Records: state that is not tenant configuration (sessions, sign-in
-- flows, authorization codes, refresh tokens, second-factor secrets,
-- signing keys). Records do not bump the revision, reach snapshots, the
-- change log or exports. version increases on every write, for
-- compare-and-swap updates.
CREATE TABLE records (
	kind       TEXT NOT NULL,
	id         TEXT NOT NULL,
	subject    TEXT NOT NULL DEFAULT '',
	version    INTEGER NOT NULL,
	body       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	expires_at INTEGER,
	PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX records_subject ON records (kind, subject);
CREATE INDEX records_expires ON records (expires_at) WHERE expires_at IS NOT NULL;
