package audit

import (
	"context"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/verityhq/verity/internal/store"
)

var hasher = rfc6962.DefaultHasher

// TileReader reads the audit tree's stored tiles (store.Store does).
type TileReader interface {
	AuditTile(ctx context.Context, level, idx uint64) ([]byte, error)
}

// nodes fetches the hashes of complete nodes of the tree from its tiles:
// a node at a level that is a multiple of store.TileHeight is a tile
// entry; any other is hashed up from the at most 128 entries below it in
// one tile. Tiles read are kept for the nodes that follow.
type nodes struct {
	ctx   context.Context
	r     TileReader
	tiles map[[2]uint64][]byte
}

func newNodes(ctx context.Context, r TileReader) *nodes {
	return &nodes{ctx: ctx, r: r, tiles: map[[2]uint64][]byte{}}
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

// hash returns the hash of the complete node id.
func (n *nodes) hash(id compact.NodeID) ([]byte, error) {
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

// ProveInclusion returns the RFC 6962 audit path of leaf index in the
// tree of size (index < size ≤ the stored tree's size), from the tiles.
func ProveInclusion(ctx context.Context, r TileReader, index, size uint64) ([][]byte, error) {
	p, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	return newNodes(ctx, r).proof(p)
}

// ProveConsistency returns the RFC 6962 proof that the tree of size1 is a
// prefix of the tree of size2 (0 < size1 ≤ size2 ≤ the stored tree's size).
func ProveConsistency(ctx context.Context, r TileReader, size1, size2 uint64) ([][]byte, error) {
	if size1 == 0 {
		return nil, fmt.Errorf("no consistency proof from the empty tree")
	}
	p, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return newNodes(ctx, r).proof(p)
}

// RootAt returns the root of the stored tree's first size leaves.
func RootAt(ctx context.Context, r TileReader, size uint64) ([]byte, error) {
	return newNodes(ctx, r).root(size)
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
