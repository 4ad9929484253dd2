-- The audit log is an RFC 6962 Merkle tree: every audit event is a leaf,
-- numbered from 0 without gaps in the order the events were written
-- (leaf_index). Events written before this migration are numbered in seq
-- order; the store hashes them into the tree when it opens.
DROP TRIGGER audit_events_no_update;
ALTER TABLE audit_events ADD COLUMN leaf_index INTEGER;
UPDATE audit_events SET leaf_index = r.i
	FROM (SELECT seq, row_number() OVER (ORDER BY seq) - 1 AS i FROM audit_events) AS r
	WHERE audit_events.seq = r.seq;
CREATE UNIQUE INDEX audit_events_leaf ON audit_events (leaf_index);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The tree's right edge: size leaves are hashed into audit_tiles, and
-- compact holds the roots of the perfect subtrees covering them (RFC 6962
-- compact range, 32 bytes each, left to right). earlier is how many
-- events this migration found: the store hashes those into the tree when
-- it opens, and no other (an event beyond the tree is not one Verity
-- wrote). One row.
CREATE TABLE audit_tree (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	size    INTEGER NOT NULL,
	compact BLOB NOT NULL,
	earlier INTEGER NOT NULL
) STRICT;
INSERT INTO audit_tree (id, size, compact, earlier) VALUES (1, 0, x'', (SELECT COUNT(*) FROM audit_events));

-- Tiles of the tree (as in C2SP tlog-tiles): the tile (level, idx) holds
-- the hashes of up to 256 nodes at tree level 8*level, indices 256*idx
-- onwards, 32 bytes each. Level 0 tiles hold the leaf hashes. Any node of
-- the tree is a tile entry or is computed from at most 128 of them.
CREATE TABLE audit_tiles (
	level  INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	hashes BLOB NOT NULL,
	PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- Signed checkpoints of the tree (C2SP tlog-checkpoint signed notes).
CREATE TABLE audit_checkpoints (
	tree_size  INTEGER PRIMARY KEY,
	root       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	note       TEXT NOT NULL
) STRICT;
