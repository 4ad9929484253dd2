-- Retention: the events of leaves [0, pruned) have been deleted once their
-- retention ended; their hashes stay in the tiles, so the tree still
-- verifies. No other audit event can be deleted.
ALTER TABLE audit_tree ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
	WHEN OLD.leaf_index IS NULL OR OLD.leaf_index >= (SELECT pruned FROM audit_tree WHERE id = 1)
BEGIN
	SELECT RAISE(ABORT, 'audit_events is append-only');
END;
