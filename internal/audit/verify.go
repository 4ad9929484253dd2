package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/transparency-dev/merkle/compact"

	"github.com/verityhq/verity/internal/store"
)

// Kinds of damage Verify reports.
const (
	Modified      = "modified"       // the event at the index is not the one logged there
	Deleted       = "deleted"        // the event logged at the index is gone
	Inserted      = "inserted"       // an event that was never logged sits at the index
	Reordered     = "reordered"      // the event at the index was logged at another index
	HashAltered   = "hash altered"   // the events are intact; the stored tree hash of the leaf is not
	TreeRewritten = "tree rewritten" // events and stored hashes both changed: only a signed checkpoint shows it
)

// Finding is where the log stops being what was logged.
type Finding struct {
	Index  uint64 `json:"index"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Report is what Verify found.
type Report struct {
	// Leaves is how many leaves were checked (pruned ones by their stored
	// hash); TreeSize is the stored tree's size; Pruned how many leaves'
	// events were deleted when their retention ended.
	Leaves, TreeSize, Pruned uint64
	// Root is the root recomputed from the events.
	Root []byte
	// Checkpoints is how many signed checkpoints were checked against the
	// recomputed tree (the stored ones and the trusted one).
	Checkpoints int
	// First is the first place the log differs from what was logged; nil
	// when it verifies.
	First *Finding
}

// OK reports whether the log verified.
func (r Report) OK() bool { return r.First == nil }

// VerifyOptions say what Verify trusts.
type VerifyOptions struct {
	// VerifierKey checks the checkpoints' signatures: the key a user kept
	// beside a saved checkpoint. Empty: the key the database names, which
	// someone who can write the database could have replaced.
	VerifierKey string
	// Trusted is a checkpoint saved outside the database (verity audit
	// checkpoint); the log must hold at least its leaves, with its root.
	Trusted []byte
}

// leafSource is what Verify reads: the events in leaf order, the stored
// tree and the checkpoints.
type leafSource interface {
	TileReader
	AuditHead(ctx context.Context) (store.AuditHead, error)
	AuditLeaves(ctx context.Context, from uint64, limit int) ([]store.AuditEvent, error)
	ListAuditCheckpoints(ctx context.Context, from, to uint64, limit int) ([]store.AuditCheckpoint, error)
}

const verifyPage = 4096

// Verify recomputes the audit log from its events — every leaf hash and
// the tree over them — and checks it against every signed checkpoint (the
// stored ones and a trusted one) and against the stored tree hashes. It
// reports the first index where the log differs from what was logged:
// an event modified, deleted, inserted or moved, or, when events and
// stored hashes were rewritten together, the span between the last
// checkpoint that still matches and the first that does not.
func Verify(ctx context.Context, src leafSource, vkey string, opts VerifyOptions) (Report, error) {
	if opts.VerifierKey != "" {
		vkey = opts.VerifierKey
	}
	head, err := src.AuditHead(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{TreeSize: head.Size}

	// The checkpoints to hold the recomputed tree to, by size.
	var checks []checkpointRef
	var badStored *Finding // a stored checkpoint that does not verify
	stored, err := src.ListAuditCheckpoints(ctx, 1, ^uint64(0)>>1, 1<<20)
	if err != nil {
		return rep, err
	}
	for _, c := range stored {
		cp, err := ParseCheckpoint([]byte(c.Note), vkey)
		if err != nil || cp.Size != c.Size || !bytes.Equal(cp.Root, c.Root) {
			// A stored checkpoint that does not verify is no reference;
			// it is reported when nothing else is wrong.
			if badStored == nil {
				badStored = &Finding{Index: c.Size, Kind: HashAltered, Detail: fmt.Sprintf("the stored checkpoint of size %d does not verify with the log's key", c.Size)}
			}
			continue
		}
		checks = append(checks, checkpointRef{cp.Size, cp.Root, fmt.Sprintf("the stored checkpoint of size %d", cp.Size)})
	}
	if opts.Trusted != nil {
		cp, err := ParseCheckpoint(opts.Trusted, vkey)
		if err != nil {
			return rep, fmt.Errorf("the trusted checkpoint: %w", err)
		}
		checks = append(checks, checkpointRef{cp.Size, cp.Root, fmt.Sprintf("the trusted checkpoint of size %d", cp.Size)})
	}
	slices.SortStableFunc(checks, func(a, b checkpointRef) int { return cmp.Compare(a.size, b.size) })

	r := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewEmptyRange(0)
	tiles := newNodes(ctx, src)
	storedLeaf := func(i uint64) []byte {
		if i >= head.Size {
			return nil
		}
		h, err := tiles.hash(compact.NewNodeID(0, i))
		if err != nil {
			return nil
		}
		return h
	}
	var firstTile *Finding // first leaf whose hash differs from the stored tree
	var rows []store.AuditEvent
	next := 0 // rows[next] is the next row to read
	peek := func(k int) (*store.AuditEvent, error) {
		for next+k >= len(rows) {
			from := uint64(0)
			if len(rows) > 0 {
				from = uint64(rows[len(rows)-1].Index) + 1
			}
			page, err := src.AuditLeaves(ctx, from, verifyPage)
			if err != nil {
				return nil, err
			}
			if len(page) == 0 {
				return nil, nil
			}
			rows = append(rows[next:], page...)
			next = 0
		}
		return &rows[next+k], nil
	}
	ci := 0
	checkAt := func(size uint64) error {
		for ; ci < len(checks) && checks[ci].size == size; ci++ {
			root, err := r.GetRootHash(nil)
			if err != nil {
				return err
			}
			if root == nil {
				root = hasher.EmptyRoot()
			}
			rep.Checkpoints++
			if !bytes.Equal(root, checks[ci].root) && rep.First == nil {
				rep.First = blame(firstTile, checks, ci, size)
			}
		}
		return nil
	}
	// Leaves whose events were pruned count with their stored hashes: the
	// checkpoints hold those to what was signed.
	for i := uint64(0); i < head.Pruned && rep.First == nil; i++ {
		if err := checkAt(i); err != nil {
			return rep, err
		}
		h := storedLeaf(i)
		if h == nil {
			rep.First = &Finding{Index: i, Kind: HashAltered, Detail: "a pruned leaf's hash is missing from the stored tree"}
			break
		}
		if err := r.Append(h, nil); err != nil {
			return rep, err
		}
		rep.Leaves++
	}
	var prunings [][2]uint64 // [from, through) of the pruning records read
	for i := head.Pruned; rep.First == nil; i++ {
		if err := checkAt(i); err != nil {
			return rep, err
		}
		if rep.First != nil {
			break
		}
		e, err := peek(0)
		if err != nil {
			return rep, err
		}
		if e == nil {
			break
		}
		switch {
		case e.Index > int64(i):
			rep.First = &Finding{Index: i, Kind: Deleted, Detail: fmt.Sprintf("no event has leaf index %d; the next is %d", i, e.Index)}
		case e.Index < int64(i):
			rep.First = &Finding{Index: uint64(e.Index), Kind: Inserted, Detail: fmt.Sprintf("two events have leaf index %d (seq %d is the second)", e.Index, e.Seq)}
		case i >= head.Size:
			rep.First = &Finding{Index: i, Kind: Inserted, Detail: fmt.Sprintf("the event at leaf index %d (seq %d) was never hashed into the tree of %d leaves", i, e.Seq, head.Size)}
		}
		if rep.First != nil {
			break
		}
		if e.Action == store.AuditPruneAction {
			var p struct{ From, Through uint64 }
			if json.Unmarshal(e.Details, &p) == nil && p.From < p.Through {
				prunings = append(prunings, [2]uint64{p.From, p.Through})
			}
		}
		h := store.AuditLeafHash(e)
		if firstTile == nil && !bytes.Equal(h, storedLeaf(i)) {
			f, err := classify(i, h, storedLeaf, peek)
			if err != nil {
				return rep, err
			}
			firstTile = f
		}
		if err := r.Append(h, nil); err != nil {
			return rep, err
		}
		next++
		rep.Leaves++
	}
	if rep.First == nil {
		for ; ci < len(checks); ci++ {
			// A checkpoint beyond the events: the end of the log is gone.
			rep.Checkpoints++
			rep.First = &Finding{Index: rep.Leaves, Kind: Deleted, Detail: fmt.Sprintf("%s covers %d leaves; the log holds %d", checks[ci].what, checks[ci].size, rep.Leaves)}
			break
		}
	}
	if rep.First == nil && firstTile != nil {
		// Every checkpoint matches the events: the stored hash is what
		// was changed (or the events after the last checkpoint).
		rep.First = firstTile
		if len(checks) > 0 && firstTile.Index < checks[len(checks)-1].size {
			rep.First = &Finding{Index: firstTile.Index, Kind: HashAltered, Detail: "the events match the signed checkpoints; the stored tree hash of this leaf was changed"}
		}
	}
	if rep.First == nil && rep.Leaves == head.Size {
		root, err := r.GetRootHash(nil)
		if err != nil {
			return rep, err
		}
		if root == nil {
			root = hasher.EmptyRoot()
		}
		if !bytes.Equal(root, head.Root) {
			rep.First = &Finding{Index: 0, Kind: HashAltered, Detail: "the stored tree's root does not match its leaves"}
		}
	}
	if rep.First == nil && head.Pruned > 0 {
		// Every pruned leaf must be covered by a pruning the log records.
		slices.SortFunc(prunings, func(a, b [2]uint64) int { return cmp.Compare(a[0], b[0]) })
		covered := uint64(0)
		for _, p := range prunings {
			if p[0] > covered {
				break
			}
			covered = max(covered, p[1])
		}
		if covered < head.Pruned {
			rep.First = &Finding{Index: covered, Kind: Deleted, Detail: fmt.Sprintf("the events before leaf %d are gone, but the log records their pruning only up to %d", head.Pruned, covered)}
		}
	}
	if rep.First == nil {
		rep.First = badStored
	}
	rep.Pruned = head.Pruned
	if root, err := r.GetRootHash(nil); err == nil {
		rep.Root = root
	}
	return rep, nil
}

// checkpointRef is a verified checkpoint the recomputed tree is held to.
type checkpointRef struct {
	size uint64
	root []byte
	what string
}

// classify says what happened at leaf i, whose event hashes to h where the
// stored tree says otherwise: the neighbours tell a deletion (the event
// here was logged at i+1), an insertion (the next event was logged at i)
// and a move (the event here was logged nearby) from a modification.
func classify(i uint64, h []byte, stored func(uint64) []byte, peek func(int) (*store.AuditEvent, error)) (*Finding, error) {
	var hNext []byte
	if nx, err := peek(1); err != nil {
		return nil, err
	} else if nx != nil {
		hNext = store.AuditLeafHash(nx)
	}
	wasNext := bytes.Equal(h, stored(i+1))                       // the event here was logged at i+1
	nextWasHere := hNext != nil && bytes.Equal(hNext, stored(i)) // the next event was logged here
	switch {
	case wasNext && !nextWasHere:
		return &Finding{Index: i, Kind: Deleted, Detail: fmt.Sprintf("the event logged at %d is gone; the events after it moved down", i)}, nil
	case nextWasHere && !wasNext:
		return &Finding{Index: i, Kind: Inserted, Detail: fmt.Sprintf("an event that was never logged sits at %d; the events after it moved up", i)}, nil
	}
	lo := uint64(0)
	if i > store.TileWidth {
		lo = i - store.TileWidth
	}
	for j := lo; j <= i+store.TileWidth; j++ {
		if s := stored(j); j != i && s != nil && bytes.Equal(h, s) {
			return &Finding{Index: i, Kind: Reordered, Detail: fmt.Sprintf("the event here was logged at %d", j)}, nil
		}
	}
	return &Finding{Index: i, Kind: Modified, Detail: "the event differs from the one logged at this index"}, nil
}

// blame explains a checkpoint whose root the events do not give: at the
// first leaf whose stored hash differs when it lies within the checkpoint,
// else (events and stored hashes rewritten together) the span since the
// last checkpoint that matched.
func blame(firstTile *Finding, checks []checkpointRef, ci int, size uint64) *Finding {
	if firstTile != nil && firstTile.Index < size {
		return firstTile
	}
	from := uint64(0)
	if ci > 0 {
		from = checks[ci-1].size
	}
	return &Finding{Index: from, Kind: TreeRewritten, Detail: fmt.Sprintf("the events and the stored hashes agree, but %s does not match them: leaves %d to %d were rewritten",
		checks[ci].what, from, size-1)}
}
