package audit

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/verityhq/verity/internal/store"
)

var hasher = rfc6962.DefaultHasher

// TileReader reads the audit tree's stored tiles (store.Store does), one
// or several in one query.
type TileReader interface {
	AuditTile(ctx context.Context, level, idx uint64) ([]byte, error)
	AuditTiles(ctx context.Context, keys [][2]uint64) (map[[2]uint64][]byte, error)
}

// nodes fetches the hashes of complete nodes of the tree from its tiles:
// a node at a level that is a multiple of store.TileHeight is a tile
// entry; any other is hashed up from the at most 128 entries below it in
// one tile. Tiles read are kept for the nodes that follow.
type nodes struct {
	ctx   context.Context
	r     TileReader
	tiles map[[2]uint64][]byte
	cache *nodeCache // may be nil
}

func newNodes(ctx context.Context, r TileReader) *nodes {
	return &nodes{ctx: ctx, r: r, tiles: map[[2]uint64][]byte{}}
}

// nodeCache keeps hashes of complete nodes at tree level TileHeight and
// above. A complete node never changes in an append-only tree, the upper
// levels are few and every proof passes through them, so after a while a
// proof reads and hashes only in its leaf's tile. Bounded: past
// maxCachedNodes it starts over.
type nodeCache struct {
	mu sync.Mutex
	m  map[compact.NodeID][]byte
}

const maxCachedNodes = 1 << 18 // 256k hashes, 8 MiB of them

func (c *nodeCache) get(id compact.NodeID) ([]byte, bool) {
	if c == nil || id.Level < store.TileHeight {
		return nil, false
	}
	c.mu.Lock()
	h, ok := c.m[id]
	c.mu.Unlock()
	return h, ok
}

func (c *nodeCache) put(id compact.NodeID, h []byte) {
	if c == nil || id.Level < store.TileHeight {
		return
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedNodes {
		c.m = make(map[compact.NodeID][]byte)
	}
	c.m[id] = h
	c.mu.Unlock()
}

func (n *nodes) tile(level, idx uint64) ([]byte, error) {
	k := [2]uint64{level, idx}
	if t, ok := n.tiles[k]; ok {
		return t, nil
	}
	t, err := n.r.AuditTile(n.ctx, level, idx)
	if err != nil {
		return nil, err
	}
	n.tiles[k] = t
	return t, nil
}

// tileOf is the tile that holds the complete node id or the entries it is
// hashed from.
func tileOf(id compact.NodeID) [2]uint64 {
	up := id.Level % store.TileHeight
	return [2]uint64{uint64(id.Level) / store.TileHeight, (id.Index << up) / store.TileWidth}
}

// prefetch reads the tiles of ids not read yet, in one query.
func (n *nodes) prefetch(ids []compact.NodeID) error {
	var keys [][2]uint64
	for _, id := range ids {
		if _, ok := n.cache.get(id); ok {
			continue
		}
		k := tileOf(id)
		if _, ok := n.tiles[k]; !ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	got, err := n.r.AuditTiles(n.ctx, keys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		n.tiles[k] = got[k] // nil when absent: hash reports it
	}
	return nil
}

// hash returns the hash of the complete node id.
func (n *nodes) hash(id compact.NodeID) ([]byte, error) {
	if h, ok := n.cache.get(id); ok {
		return h, nil
	}
	h, err := n.compute(id)
	if err == nil {
		n.cache.put(id, h)
	}
	return h, err
}

func (n *nodes) compute(id compact.NodeID) ([]byte, error) {
	level := uint64(id.Level) / store.TileHeight
	up := id.Level % store.TileHeight
	first := id.Index << up // the node's leftmost descendant at the tile level
	width := uint64(1) << up
	t, err := n.tile(level, first/store.TileWidth)
	if err != nil {
		return nil, err
	}
	off := first % store.TileWidth
	if uint64(len(t)) < (off+width)*store.HashSize {
		return nil, fmt.Errorf("audit tree node %d/%d: tile %d/%d holds %d hashes, the node needs %d", id.Level, id.Index,
			level, first/store.TileWidth, len(t)/store.HashSize, off+width)
	}
	hs := make([][]byte, width)
	for i := range hs {
		hs[i] = t[(off+uint64(i))*store.HashSize : (off+uint64(i)+1)*store.HashSize]
	}
	for len(hs) > 1 {
		for i := 0; i < len(hs); i += 2 {
			hs[i/2] = hasher.HashChildren(hs[i], hs[i+1])
		}
		hs = hs[:len(hs)/2]
	}
	return hs[0], nil
}

func (n *nodes) proof(p proof.Nodes) ([][]byte, error) {
	if err := n.prefetch(p.IDs); err != nil {
		return nil, err
	}
	hs := make([][]byte, len(p.IDs))
	for i, id := range p.IDs {
		h, err := n.hash(id)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	return p.Rehash(hs, hasher.HashChildren)
}

// root returns the root of the tree's first size leaves.
func (n *nodes) root(size uint64) ([]byte, error) {
	if size == 0 {
		return hasher.EmptyRoot(), nil
	}
	ids := compact.RangeNodes(0, size, nil)
	if err := n.prefetch(ids); err != nil {
		return nil, err
	}
	hs := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := n.hash(id)
		if err != nil {
			return nil, err
		}
		hs[i] = h
	}
	r, err := (&compact.RangeFactory{Hash: hasher.HashChildren}).NewRange(0, size, hs)
	if err != nil {
		return nil, err
	}
	return r.GetRootHash(nil)
}

// Prover makes proofs from the stored tiles, keeping the upper levels'
// node hashes (nodeCache) from one proof to the next.
type Prover struct {
	r     TileReader
	cache nodeCache
}

// NewProver returns a prover over r's tiles.
func NewProver(r TileReader) *Prover { return &Prover{r: r} }

func (p *Prover) nodes(ctx context.Context) *nodes {
	n := newNodes(ctx, p.r)
	n.cache = &p.cache
	return n
}

// Inclusion returns the RFC 6962 audit path of leaf index in the tree of
// size (index < size ≤ the stored tree's size).
func (p *Prover) Inclusion(ctx context.Context, index, size uint64) ([][]byte, error) {
	ids, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return p.nodes(ctx).proof(ids)
}

// Consistency returns the RFC 6962 proof that the tree of size1 is a
// prefix of the tree of size2 (0 < size1 ≤ size2 ≤ the stored tree's size).
func (p *Prover) Consistency(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if size1 == 0 {
		return nil, fmt.Errorf("no consistency proof from the empty tree")
	}
	ids, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return p.nodes(ctx).proof(ids)
}

// Root returns the root of the stored tree's first size leaves.
func (p *Prover) Root(ctx context.Context, size uint64) ([]byte, error) {
	return p.nodes(ctx).root(size)
}

// ProveInclusion, ProveConsistency and RootAt are the Prover's, without a
// cache kept between calls.
func ProveInclusion(ctx context.Context, r TileReader, index, size uint64) ([][]byte, error) {
	return NewProver(r).Inclusion(ctx, index, size)
}

func ProveConsistency(ctx context.Context, r TileReader, size1, size2 uint64) ([][]byte, error) {
	return NewProver(r).Consistency(ctx, size1, size2)
}

func RootAt(ctx context.Context, r TileReader, size uint64) ([]byte, error) {
	return NewProver(r).Root(ctx, size)
}

// VerifyInclusion checks an inclusion proof of leafHash at index against
// root of a tree of size.
func VerifyInclusion(index, size uint64, leafHash []byte, hashes [][]byte, root []byte) error {
	return proof.VerifyInclusion(hasher, index, size, leafHash, hashes, root)
}

// VerifyConsistency checks a consistency proof between two roots. Unlike
// RFC 6962's letter, a proof from the empty tree is refused: an empty
// tree proves nothing, and a verifier that accepts it can be fed any
// history.
func VerifyConsistency(size1, size2 uint64, hashes [][]byte, root1, root2 []byte) error {
	if size1 == 0 {
		return fmt.Errorf("no consistency proof from the empty tree")
	}
	return proof.VerifyConsistency(hasher, size1, size2, hashes, root1, root2)
}

// LeafHash is the RFC 6962 hash of a leaf's bytes.
func LeafHash(leaf []byte) []byte { return hasher.HashLeaf(leaf) }
