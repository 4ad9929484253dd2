-- The audit log is an RFC 6962 Merkle tree: every audit event is a leaf,
-- numbered from 0 without gaps in the order the events were written
-- (leaf_index). Events written before this migration are numbered in seq
-- order; the store hashes them into the tree when it opens.
ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change;
ALTER TABLE audit_events ADD COLUMN leaf_index bigint;
UPDATE audit_events SET leaf_index = r.i
	FROM (SELECT seq, row_number() OVER (ORDER BY seq) - 1 AS i FROM audit_events) AS r
	WHERE audit_events.seq = r.seq;
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change;
CREATE UNIQUE INDEX audit_events_leaf ON audit_events (leaf_index);

-- The tree's right edge: size leaves are hashed into audit_tiles, and
-- compact holds the roots of the perfect subtrees covering them (RFC 6962
-- compact range, 32 bytes each, left to right). earlier is how many
-- events this migration found: the store hashes those into the tree when
-- it opens, and no other (an event beyond the tree is not one Verity
-- wrote). One row; writers of the
-- audit log take its lock, which numbers their events without gaps.
CREATE TABLE audit_tree (
	id      integer PRIMARY KEY CHECK (id = 1),
	size    bigint NOT NULL,
	compact bytea NOT NULL,
	earlier bigint NOT NULL
);
INSERT INTO audit_tree (id, size, compact, earlier) VALUES (1, 0, '\x', (SELECT COUNT(*) FROM audit_events));

-- Tiles of the tree (as in C2SP tlog-tiles): the tile (level, idx) holds
-- the hashes of up to 256 nodes at tree level 8*level, indices 256*idx
-- onwards, 32 bytes each. Level 0 tiles hold the leaf hashes. Any node of
-- the tree is a tile entry or is computed from at most 128 of them.
CREATE TABLE audit_tiles (
	level  integer NOT NULL,
	idx    bigint NOT NULL,
	hashes bytea NOT NULL,
	PRIMARY KEY (level, idx)
);

-- Signed checkpoints of the tree (C2SP tlog-checkpoint signed notes).
CREATE TABLE audit_checkpoints (
	tree_size  bigint PRIMARY KEY,
	root       bytea NOT NULL,
	created_at bigint NOT NULL,
	note       text NOT NULL
);
