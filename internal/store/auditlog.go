package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// The audit log is an RFC 6962 Merkle tree whose leaves are the audit
// events, numbered from 0 without gaps in the order they were written
// (AuditEvent.Index). The transaction that inserts events also hashes them
// into the tree: it takes the audit_tree row's lock (which numbers events
// across nodes), appends the leaf hashes to the tree's compact range and
// writes the tiles the new nodes belong to. Nothing here is trusted by the
// audit log's verification, which recomputes every leaf from the events;
// the tiles make proofs fast.

// Tile geometry (C2SP tlog-tiles): a tile holds up to TileWidth hashes of
// nodes at tree level TileHeight*level.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	HashSize   = 32
)

var (
	auditHasher  = rfc6962.DefaultHasher
	auditFactory = &compact.RangeFactory{Hash: auditHasher.HashChildren}
)

// AuditLeaf returns the canonical bytes of e as a leaf: a JSON object
// with the fields in a fixed order — time (UTC, at the microseconds the
// store keeps), requestId, actor, action, target, result, status — and
// last "details", the details exactly as stored (JSON, as Verity writes
// them; null when absent). The fields before it are JSON-encoded, so the
// bytes name one event only. The same event always gives the same bytes;
// its place in the log is its place in the tree.
func AuditLeaf(e *AuditEvent) []byte {
	head := struct {
		Time      string `json:"time"`
		RequestID string `json:"requestId"`
		Actor     string `json:"actor"`
		Action    string `json:"action"`
		Target    string `json:"target"`
		Result    string `json:"result"`
		Status    int    `json:"status"`
	}{fromMicros(toMicros(e.Time)).UTC().Format(time.RFC3339Nano), e.RequestID, e.Actor, e.Action, e.Target, e.Result, e.Status}
	b, err := json.Marshal(head)
	if err != nil {
		panic("store: audit leaf: " + err.Error()) // strings and an int always encode
	}
	details := e.Details
	if details == nil {
		details = []byte("null")
	}
	out := make([]byte, 0, len(b)+len(`,"details":`)+len(details))
	out = append(out, b[:len(b)-1]...)
	out = append(out, `,"details":`...)
	out = append(out, details...)
	return append(out, '}')
}

// AuditLeafHash is the RFC 6962 leaf hash of e.
func AuditLeafHash(e *AuditEvent) []byte {
	return auditHasher.HashLeaf(AuditLeaf(e))
}

// AuditHead is the audit tree as stored: its size and root (SHA-256 of
// nothing for the empty tree), and Pruned: the events of leaves
// [0, Pruned) were deleted when their retention ended (their hashes stay).
type AuditHead struct {
	Size   uint64
	Root   []byte
	Pruned uint64
}

// auditTree is the stored right edge of the tree.
type auditTree struct {
	size    uint64
	compact [][]byte
}

func (t auditTree) root() ([]byte, error) {
	r, err := auditFactory.NewRange(0, t.size, t.compact)
	if err != nil {
		return nil, err
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if root == nil {
		root = auditHasher.EmptyRoot()
	}
	return root, nil
}

func decodeCompact(size uint64, b []byte) (auditTree, error) {
	if len(b)%HashSize != 0 || len(b)/HashSize != compact.RangeSize(0, size) {
		return auditTree{}, fmt.Errorf("audit tree of size %d: %d bytes of compact range", size, len(b))
	}
	t := auditTree{size: size}
	for i := 0; i < len(b); i += HashSize {
		t.compact = append(t.compact, b[i:i+HashSize])
	}
	return t, nil
}

// lockAuditTree takes the audit tree's row lock in tx and reads it: audit
// writers of every node queue here, so leaf indices have no gaps.
func lockAuditTree(ctx context.Context, tx txn) (auditTree, error) {
	var size int64
	var b []byte
	if err := tx.queryRow(ctx, `UPDATE audit_tree SET size = size WHERE id = 1 RETURNING size, compact`).Scan(&size, &b); err != nil {
		return auditTree{}, err
	}
	return decodeCompact(uint64(size), b)
}

// tailTiles keeps the partial tiles at the tree's right edge as this node
// last committed them, so that the next group commit extends them without
// reading them back. A cached tile is used only when its length is what
// the tree, read under its lock, says it holds: another node's appends
// (PostgreSQL) make it stale and it is read again. Nodes are immutable, so
// a tile of the right length is the right tile.
type tailTiles struct {
	mu    sync.Mutex
	tiles map[[2]uint64][]byte
}

func (c *tailTiles) get(k [2]uint64, want int) ([]byte, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tiles[k]
	return t, ok && len(t) == want
}

// keep replaces the cache with the partial tiles just committed.
func (c *tailTiles) keep(written map[[2]uint64][]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tiles = map[[2]uint64][]byte{}
	for k, t := range written {
		if len(t) < TileWidth*HashSize {
			c.tiles[k] = t
		}
	}
}

// appendAuditLeaves hashes leaves into the tree in tx: the tiles the new
// nodes belong to are extended and the tree row updated. It returns the
// tiles it wrote (for tailTiles, once tx commits); cache may be nil.
func appendAuditLeaves(ctx context.Context, tx txn, t *auditTree, leafHashes [][]byte, cache *tailTiles) (map[[2]uint64][]byte, error) {
	r, err := auditFactory.NewRange(0, t.size, t.compact)
	if err != nil {
		return nil, err
	}
	type tileKey struct{ level, idx uint64 }
	type tileAdd struct {
		first  uint64 // offset of the first new hash in the tile
		hashes []byte
	}
	adds := map[tileKey]*tileAdd{}
	var order []tileKey
	visit := func(id compact.NodeID, h []byte) {
		if id.Level%TileHeight != 0 {
			return
		}
		k := tileKey{uint64(id.Level / TileHeight), id.Index / TileWidth}
		a := adds[k]
		if a == nil {
			a = &tileAdd{first: id.Index % TileWidth}
			adds[k] = a
			order = append(order, k)
		}
		a.hashes = append(a.hashes, h...)
	}
	for _, h := range leafHashes {
		if err := r.Append(h, visit); err != nil {
			return nil, err
		}
	}
	written := make(map[[2]uint64][]byte, len(order))
	for _, k := range order {
		a := adds[k]
		key := [2]uint64{k.level, k.idx}
		var old []byte
		if a.first > 0 {
			var ok bool
			if old, ok = cache.get(key, int(a.first*HashSize)); !ok {
				err := tx.queryRow(ctx, `SELECT hashes FROM audit_tiles WHERE level = ? AND idx = ?`, int64(k.level), int64(k.idx)).Scan(&old)
				if err != nil && !isNoRows(err) {
					return nil, err
				}
			}
		}
		if uint64(len(old)) != a.first*HashSize {
			return nil, fmt.Errorf("audit tile %d/%d holds %d hashes, the tree says %d", k.level, k.idx, len(old)/HashSize, a.first)
		}
		tile := append(slices.Clip(old), a.hashes...)
		if _, err := tx.exec(ctx, `INSERT INTO audit_tiles (level, idx, hashes) VALUES (?, ?, ?)
			ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes`, int64(k.level), int64(k.idx), tile); err != nil {
			return nil, err
		}
		written[key] = tile
	}
	t.size, t.compact = r.End(), r.Hashes()
	if _, err := tx.exec(ctx, `UPDATE audit_tree SET size = ?, compact = ? WHERE id = 1`, int64(t.size), slices.Concat(t.compact...)); err != nil {
		return nil, err
	}
	return written, nil
}

// integrateAuditBacklog hashes into the tree the events written before the
// tree existed (audit_tree.earlier of them), in batches, each its own
// transaction. Events beyond those and the tree are left for verification
// to report: Verity never writes one.
func (s *sqlStore) integrateAuditBacklog(ctx context.Context) error {
	const batch = 4096
	for {
		done, err := func() (bool, error) {
			tx, err := s.eng.beginWrite(ctx)
			if err != nil {
				return false, err
			}
			defer func() { _ = tx.rollback(ctx) }()
			t, err := lockAuditTree(ctx, tx)
			if err != nil {
				return false, err
			}
			var earlier int64
			if err := tx.queryRow(ctx, `SELECT earlier FROM audit_tree WHERE id = 1`).Scan(&earlier); err != nil {
				return false, err
			}
			if t.size >= uint64(earlier) {
				return true, nil
			}
			evs, err := readAuditLeaves(ctx, tx, t.size, min(batch, int(uint64(earlier)-t.size)))
			if err != nil {
				return false, err
			}
			if len(evs) == 0 {
				return true, nil
			}
			hashes := make([][]byte, len(evs))
			for i := range evs {
				if uint64(evs[i].Index) != t.size+uint64(i) {
					return false, fmt.Errorf("audit event seq %d has leaf index %d, want %d", evs[i].Seq, evs[i].Index, t.size+uint64(i))
				}
				hashes[i] = AuditLeafHash(&evs[i])
			}
			if _, err := appendAuditLeaves(ctx, tx, &t, hashes, nil); err != nil {
				return false, err
			}
			return false, tx.commit(ctx)
		}()
		if err != nil {
			return s.wrap(ctx, err, "hash earlier audit events into the audit tree")
		}
		if done {
			return nil
		}
	}
}

const auditColumnsSelect = `seq, leaf_index, event_time, request_id, actor, action, target, result, status, details`

func scanAuditEvent(rs rows) (AuditEvent, error) {
	var e AuditEvent
	var at int64
	var index *int64
	var details *string
	if err := rs.Scan(&e.Seq, &index, &at, &e.RequestID, &e.Actor, &e.Action, &e.Target, &e.Result, &e.Status, &details); err != nil {
		return e, err
	}
	e.Index = -1
	if index != nil {
		e.Index = *index
	}
	e.Time = fromMicros(at)
	if details != nil {
		e.Details = []byte(*details)
	}
	return e, nil
}

func readAuditLeaves(ctx context.Context, q querier, from uint64, limit int) ([]AuditEvent, error) {
	rs, err := q.query(ctx, `SELECT `+auditColumnsSelect+` FROM audit_events WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?`, int64(from), limit)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []AuditEvent
	for rs.Next() {
		e, err := scanAuditEvent(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rs.Err()
}

// AuditLeaves returns up to limit events in leaf order from leaf index
// from on, as stored: a verifier reads them all and hashes them itself.
// Rows with a missing, repeated or out-of-order index are returned as
// they are, for the verifier to find.
func (s *sqlStore) AuditLeaves(ctx context.Context, from uint64, limit int) ([]AuditEvent, error) {
	evs, err := readAuditLeaves(ctx, s.eng.reads(), from, limit)
	if err != nil {
		return nil, s.wrap(ctx, err, "read audit leaves")
	}
	return evs, nil
}

// AuditHead returns the stored tree's size and root.
func (s *sqlStore) AuditHead(ctx context.Context) (AuditHead, error) {
	var size, pruned int64
	var b []byte
	if err := s.eng.reads().queryRow(ctx, `SELECT size, compact, pruned FROM audit_tree WHERE id = 1`).Scan(&size, &b, &pruned); err != nil {
		return AuditHead{}, s.wrap(ctx, err, "read audit tree")
	}
	t, err := decodeCompact(uint64(size), b)
	if err != nil {
		return AuditHead{}, err
	}
	root, err := t.root()
	if err != nil {
		return AuditHead{}, err
	}
	return AuditHead{Size: t.size, Root: root, Pruned: uint64(pruned)}, nil
}

// AuditTile returns the hashes of tile (level, idx), 32 bytes each, as
// many as are stored (a tile at the right edge is partial); empty when
// there is none.
func (s *sqlStore) AuditTile(ctx context.Context, level, idx uint64) ([]byte, error) {
	var b []byte
	err := s.eng.reads().queryRow(ctx, `SELECT hashes FROM audit_tiles WHERE level = ? AND idx = ?`, int64(level), int64(idx)).Scan(&b)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, s.wrap(ctx, err, "read audit tile %d/%d", level, idx)
	}
	return b, nil
}

// AuditTiles returns the tiles keys name ({level, idx}) in one query;
// absent tiles are left out of the map.
func (s *sqlStore) AuditTiles(ctx context.Context, keys [][2]uint64) (map[[2]uint64][]byte, error) {
	out := make(map[[2]uint64][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	var where strings.Builder
	args := make([]any, 0, 2*len(keys))
	for i, k := range keys {
		if i > 0 {
			where.WriteString(" OR ")
		}
		where.WriteString("(level = ? AND idx = ?)")
		args = append(args, int64(k[0]), int64(k[1]))
	}
	rs, err := s.eng.reads().query(ctx, `SELECT level, idx, hashes FROM audit_tiles WHERE `+where.String(), args...)
	if err != nil {
		return nil, s.wrap(ctx, err, "read audit tiles")
	}
	defer rs.Close()
	for rs.Next() {
		var level, idx int64
		var b []byte
		if err := rs.Scan(&level, &idx, &b); err != nil {
			return nil, s.wrap(ctx, err, "read audit tiles")
		}
		out[[2]uint64{uint64(level), uint64(idx)}] = b
	}
	if err := rs.Err(); err != nil {
		return nil, s.wrap(ctx, err, "read audit tiles")
	}
	return out, nil
}

// AuditCheckpoint is a signed checkpoint of the audit tree.
type AuditCheckpoint struct {
	Size    uint64
	Root    []byte
	Created time.Time
	Note    string // the signed note, as served and as a user saves it
}

// ErrCheckpointConflict: a different checkpoint of the same size exists.
var ErrCheckpointConflict = errors.New("a different checkpoint of this size exists")

// SaveAuditCheckpoint stores c; saving the same checkpoint twice is no
// error, a different one of the same size is ErrCheckpointConflict.
func (s *sqlStore) SaveAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error {
	n, err := s.eng.writes().exec(ctx, `INSERT INTO audit_checkpoints (tree_size, root, created_at, note) VALUES (?, ?, ?, ?)
		ON CONFLICT (tree_size) DO NOTHING`, int64(c.Size), c.Root, toMicros(c.Created), c.Note)
	if err != nil {
		return s.wrap(ctx, err, "save audit checkpoint")
	}
	if n == 0 {
		old, err := s.GetAuditCheckpoint(ctx, c.Size)
		if err != nil {
			return err
		}
		if string(old.Root) != string(c.Root) {
			return fmt.Errorf("store: save audit checkpoint of size %d: %w", c.Size, ErrCheckpointConflict)
		}
	}
	return nil
}

// SetAuditCheckpointNote replaces the note of the checkpoint of size
// with note (the same checkpoint with more signatures: a witness's).
func (s *sqlStore) SetAuditCheckpointNote(ctx context.Context, size uint64, note string) error {
	n, err := s.eng.writes().exec(ctx, `UPDATE audit_checkpoints SET note = ? WHERE tree_size = ?`, note, int64(size))
	if err != nil {
		return s.wrap(ctx, err, "cosign audit checkpoint")
	}
	if n == 0 {
		return fmt.Errorf("store: audit checkpoint of size %d: %w", size, ErrNotFound)
	}
	return nil
}

// GetAuditCheckpoint returns the checkpoint of size; ErrNotFound when
// there is none. LatestAuditCheckpoint returns the largest.
func (s *sqlStore) GetAuditCheckpoint(ctx context.Context, size uint64) (AuditCheckpoint, error) {
	return s.readCheckpoint(ctx, `SELECT tree_size, root, created_at, note FROM audit_checkpoints WHERE tree_size = ?`, int64(size))
}

func (s *sqlStore) LatestAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error) {
	return s.readCheckpoint(ctx, `SELECT tree_size, root, created_at, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1`)
}

// ListAuditCheckpoints returns the checkpoints of sizes in [from, to], in
// size order, at most limit.
func (s *sqlStore) ListAuditCheckpoints(ctx context.Context, from, to uint64, limit int) ([]AuditCheckpoint, error) {
	rs, err := s.eng.reads().query(ctx, `SELECT tree_size, root, created_at, note FROM audit_checkpoints
		WHERE tree_size >= ? AND tree_size <= ? ORDER BY tree_size LIMIT ?`, int64(from), int64(to), limit)
	if err != nil {
		return nil, s.wrap(ctx, err, "list audit checkpoints")
	}
	defer rs.Close()
	var out []AuditCheckpoint
	for rs.Next() {
		var c AuditCheckpoint
		var size, created int64
		if err := rs.Scan(&size, &c.Root, &created, &c.Note); err != nil {
			return nil, s.wrap(ctx, err, "list audit checkpoints")
		}
		c.Size, c.Created = uint64(size), fromMicros(created)
		out = append(out, c)
	}
	if err := rs.Err(); err != nil {
		return nil, s.wrap(ctx, err, "list audit checkpoints")
	}
	return out, nil
}

func (s *sqlStore) readCheckpoint(ctx context.Context, q string, args ...any) (AuditCheckpoint, error) {
	var c AuditCheckpoint
	var size, created int64
	err := s.eng.reads().queryRow(ctx, q, args...).Scan(&size, &c.Root, &created, &c.Note)
	if isNoRows(err) {
		return c, fmt.Errorf("store: audit checkpoint: %w", ErrNotFound)
	}
	if err != nil {
		return c, s.wrap(ctx, err, "read audit checkpoint")
	}
	c.Size, c.Created = uint64(size), fromMicros(created)
	return c, nil
}

// AuditReceipt says whether an Update recorded its audit event (AuditWith)
// and which.
type AuditReceipt struct {
	Written bool
	Event   AuditEvent // with Seq and Index, once Written

	make    func(revision int64, changes []Change) AuditEvent
	pending AuditEvent
}

type auditWithKey struct{}

// AuditWith returns a context under which an Update that writes appends
// the event mk returns (given the new revision and the changes) to the
// audit log in the same transaction: the change is made only with its record, and fails
// when the record cannot be written. An Update that writes nothing
// appends nothing; the receipt says what happened.
func AuditWith(ctx context.Context, mk func(revision int64, changes []Change) AuditEvent) (context.Context, *AuditReceipt) {
	r := &AuditReceipt{make: mk}
	return context.WithValue(ctx, auditWithKey{}, r), r
}

// appendAuditInTx appends e in tx: numbered under the tree's lock, hashed
// into the tree, inserted.
func appendAuditInTx(ctx context.Context, tx txn, e *AuditEvent) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	t, err := lockAuditTree(ctx, tx)
	if err != nil {
		return err
	}
	e.Index = int64(t.size)
	if err := tx.queryRow(ctx, auditInsert(1)+" RETURNING seq", appendAuditArgs(nil, e)...).Scan(&e.Seq); err != nil {
		return err
	}
	_, err = appendAuditLeaves(ctx, tx, &t, [][]byte{AuditLeafHash(e)}, nil)
	return err
}

// AuditPruneAction is the audit event that records a pruning: details
// {"from", "through", "before"} say which leaves lost their events and the
// cutoff they were older than.
const AuditPruneAction = "audit.prune"

// maxPrune bounds the events one pruning transaction deletes.
const maxPrune = 10_000

// PruneAudit deletes the events older than before, from the oldest on, in
// leaf order, up to leaf index limit (exclusive) and at most maxPrune at a
// time, keeping their hashes in the tree; the pruning is itself an audit
// event, in the same transaction. It returns the leaves pruned: [from,
// through); from == through when none were.
func (s *sqlStore) PruneAudit(ctx context.Context, before time.Time, limit uint64) (from, through uint64, err error) {
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	tx, err := s.eng.beginWrite(ctx)
	if err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events: begin")
	}
	defer func() { _ = tx.rollback(context.WithoutCancel(ctx)) }()
	t, err := lockAuditTree(ctx, tx)
	if err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events: lock the tree")
	}
	var pruned int64
	if err := tx.queryRow(ctx, `SELECT pruned FROM audit_tree WHERE id = 1`).Scan(&pruned); err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events")
	}
	from = uint64(pruned)
	end := min(limit, t.size, from+maxPrune)
	if end <= from {
		return from, from, nil
	}
	// The first leaf in range whose event is not old enough stops it.
	var young *int64
	if err := tx.queryRow(ctx, `SELECT MIN(leaf_index) FROM audit_events WHERE leaf_index >= ? AND leaf_index < ? AND event_time >= ?`,
		pruned, int64(end), toMicros(before)).Scan(&young); err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events")
	}
	through = end
	if young != nil {
		through = uint64(*young)
	}
	if through <= from {
		return from, from, nil
	}
	details, _ := json.Marshal(map[string]any{"from": from, "through": through, "before": before.UTC().Format(time.RFC3339Nano)})
	e := AuditEvent{Time: time.Now(), Action: AuditPruneAction, Target: "/audit", Result: "success", Details: details}
	if err := appendAuditInTx(ctx, tx, &e); err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events: record the pruning")
	}
	if _, err := tx.exec(ctx, `UPDATE audit_tree SET pruned = ? WHERE id = 1`, int64(through)); err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events")
	}
	if _, err := tx.exec(ctx, `DELETE FROM audit_events WHERE leaf_index >= ? AND leaf_index < ?`, int64(from), int64(through)); err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events")
	}
	if err := tx.commit(ctx); err != nil {
		return 0, 0, s.wrap(ctx, err, "prune audit events: commit")
	}
	return from, through, nil
}
