-- Retention: the events of leaves [0, pruned) have been deleted once their
-- retention ended; their hashes stay in the tiles, so the tree still
-- verifies. No other audit event can be deleted.
ALTER TABLE audit_tree ADD COLUMN pruned bigint NOT NULL DEFAULT 0;
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND OLD.leaf_index IS NOT NULL
		AND OLD.leaf_index < (SELECT pruned FROM audit_tree WHERE id = 1) THEN
		RETURN OLD;
	END IF;
	RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
