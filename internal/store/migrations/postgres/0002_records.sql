-- Records: state that is not tenant configuration (sessions, sign-in
-- flows, authorization codes, refresh tokens, second-factor secrets,
-- signing keys). Records do not bump the revision, reach snapshots, the
-- change log or exports. version increases on every write, for
-- compare-and-swap updates.
CREATE TABLE records (
	kind       text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	subject    text COLLATE "C" NOT NULL DEFAULT '',
	version    bigint NOT NULL,
	body       bytea NOT NULL,
	created_at bigint NOT NULL,
	updated_at bigint NOT NULL,
	expires_at bigint,
	PRIMARY KEY (kind, id)
);
CREATE INDEX records_subject ON records (kind, subject);
CREATE INDEX records_expires ON records (expires_at) WHERE expires_at IS NOT NULL;
