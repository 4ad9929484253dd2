package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/verityhq/verity/internal/store"
)

// Sealer seals the checkpoint signing key at rest (the keyring does).
type Sealer interface {
	Seal(purpose, id string, plaintext []byte) ([]byte, error)
	Open(purpose, id string, sealed []byte) ([]byte, error)
}

// Log signs checkpoints of the audit tree and serves proofs.
type Log struct {
	st       store.Store
	prover   *Prover
	signer   note.Signer
	verifier note.Verifier
	origin   string
	vkey     string
	log      *slog.Logger
	now      func() time.Time
}

// Options configure a Log.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
}

// The checkpoint signing key is one record, created by whichever node
// needs it first: its origin (the log's name, also the key's), the
// verifier key in the clear and the signer key sealed.
const (
	keyRecordKind = "auditLogKey"
	keyRecordID   = "current"
	sealPurpose   = "audit-checkpoint-key"
)

type keyRecord struct {
	Origin       string `json:"origin"`
	VerifierKey  string `json:"verifierKey"`
	SealedSigner []byte `json:"sealedSigner"`
}

// Open loads the log's signing key, creating it on first use.
func Open(ctx context.Context, st store.Store, sealer Sealer, opts Options) (*Log, error) {
	l := &Log{st: st, prover: NewProver(st), log: opts.Logger, now: opts.Now}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if l.now == nil {
		l.now = time.Now
	}
	kr, err := loadOrCreateKey(ctx, st, sealer)
	if err != nil {
		return nil, err
	}
	skey, err := sealer.Open(sealPurpose, kr.Origin, kr.SealedSigner)
	if err != nil {
		return nil, fmt.Errorf("audit: open the checkpoint signing key: %w", err)
	}
	if l.signer, err = note.NewSigner(string(skey)); err != nil {
		return nil, fmt.Errorf("audit: checkpoint signing key: %w", err)
	}
	if l.verifier, err = note.NewVerifier(kr.VerifierKey); err != nil {
		return nil, fmt.Errorf("audit: checkpoint verifier key: %w", err)
	}
	l.origin, l.vkey = kr.Origin, kr.VerifierKey
	return l, nil
}

func loadOrCreateKey(ctx context.Context, st store.Store, sealer Sealer) (keyRecord, error) {
	var kr keyRecord
	rec, err := st.GetRecord(ctx, keyRecordKind, keyRecordID)
	if err == nil {
		if err := json.Unmarshal(rec.Body, &kr); err != nil {
			return kr, fmt.Errorf("audit: read the checkpoint key record: %w", err)
		}
		return kr, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return kr, err
	}
	// A name of this log, unique to its database and the same on every
	// node: the checkpoints' origin and the key's name.
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return kr, err
	}
	origin := "verity-audit-" + hex.EncodeToString(id)
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return kr, err
	}
	sealed, err := sealer.Seal(sealPurpose, origin, []byte(skey))
	if err != nil {
		return kr, err
	}
	kr = keyRecord{Origin: origin, VerifierKey: vkey, SealedSigner: sealed}
	body, _ := json.Marshal(kr)
	if _, err := st.CreateRecord(ctx, store.Record{Kind: keyRecordKind, ID: keyRecordID, Body: body}); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another node created it first: use theirs.
			return loadOrCreateKey(ctx, st, sealer)
		}
		return kr, err
	}
	return kr, nil
}

// StoredVerifierKey returns the checkpoint verifier key the database names
// (without the master key: it is kept in the clear). Someone who can write
// the database can replace it; a verifier that kept the key does not ask.
func StoredVerifierKey(ctx context.Context, st store.Store) (string, error) {
	rec, err := st.GetRecord(ctx, keyRecordKind, keyRecordID)
	if err != nil {
		return "", err
	}
	var kr keyRecord
	if err := json.Unmarshal(rec.Body, &kr); err != nil {
		return "", fmt.Errorf("audit: read the checkpoint key record: %w", err)
	}
	return kr.VerifierKey, nil
}

// Origin is the log's name, the first line of its checkpoints.
func (l *Log) Origin() string { return l.origin }

// VerifierKey is the note verifier key of the log's checkpoints
// (name+hash+key, as golang.org/x/mod/sumdb/note writes it): what a user
// keeps beside a saved checkpoint to verify it later.
func (l *Log) VerifierKey() string { return l.vkey }

// Checkpoint signs a checkpoint of the tree as it is now, unless the
// latest one already covers it, and returns it.
func (l *Log) Checkpoint(ctx context.Context) (store.AuditCheckpoint, error) {
	head, err := l.st.AuditHead(ctx)
	if err != nil {
		return store.AuditCheckpoint{}, err
	}
	latest, err := l.st.LatestAuditCheckpoint(ctx)
	switch {
	case err == nil && latest.Size >= head.Size:
		return latest, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return store.AuditCheckpoint{}, err
	}
	now := l.now().UTC()
	body := log.Checkpoint{Origin: l.origin, Size: head.Size, Hash: head.Root}.Marshal()
	// One extension line: when the checkpoint was made.
	body = append(body, "time "+now.Format(time.RFC3339)+"\n"...)
	signed, err := note.Sign(&note.Note{Text: string(body)}, l.signer)
	if err != nil {
		return store.AuditCheckpoint{}, err
	}
	c := store.AuditCheckpoint{Size: head.Size, Root: head.Root, Created: now, Note: string(signed)}
	if err := l.st.SaveAuditCheckpoint(ctx, c); err != nil {
		if errors.Is(err, store.ErrCheckpointConflict) {
			// Another node checkpointed the same size first; theirs
			// stands (and a different root is what verify reports).
			return l.st.GetAuditCheckpoint(ctx, head.Size)
		}
		return store.AuditCheckpoint{}, err
	}
	l.log.Info("audit log checkpoint", "size", c.Size, "root", hex.EncodeToString(c.Root))
	return c, nil
}

// Run makes a checkpoint every interval while the tree grows, until ctx
// ends.
func (l *Log) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := l.Checkpoint(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("audit log checkpoint", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Checkpoint is a parsed checkpoint whose signature has been verified.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
	Time   time.Time // zero when the checkpoint does not say
}

// ParseCheckpoint verifies the signed note text with vkey (the log's
// verifier key) and parses it.
func ParseCheckpoint(text []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	cp, rest, _, err := log.ParseCheckpoint(text, v.Name(), v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	c := Checkpoint{Origin: cp.Origin, Size: cp.Size, Root: cp.Hash}
	for _, line := range strings.Split(string(rest), "\n") {
		if ts, ok := strings.CutPrefix(line, "time "); ok {
			if t, err := time.Parse(time.RFC3339, ts); err == nil {
				c.Time = t
			}
		}
	}
	if len(c.Root) != store.HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint: root of %d bytes, want %d", len(c.Root), store.HashSize)
	}
	return c, nil
}

// InclusionProof is an event's place in the log, provable against any
// checkpoint at least as large.
type InclusionProof struct {
	Index    uint64
	TreeSize uint64
	LeafHash []byte
	Hashes   [][]byte
	Event    store.AuditEvent
	Leaf     []byte // the leaf's bytes: what LeafHash hashes
}

// Inclusion proves the event at index in the tree of size (the current
// tree when size is 0).
func (l *Log) Inclusion(ctx context.Context, index, size uint64) (InclusionProof, error) {
	head, err := l.st.AuditHead(ctx)
	if err != nil {
		return InclusionProof{}, err
	}
	if size == 0 {
		size = head.Size
	}
	if size > head.Size || index >= size {
		return InclusionProof{}, fmt.Errorf("audit: leaf %d of a tree of %d: %w (the log holds %d)", index, size, ErrOutOfRange, head.Size)
	}
	evs, err := l.st.AuditLeaves(ctx, index, 1)
	if err != nil {
		return InclusionProof{}, err
	}
	if len(evs) == 0 || evs[0].Index != int64(index) {
		return InclusionProof{}, fmt.Errorf("audit: leaf %d: %w", index, store.ErrNotFound)
	}
	hashes, err := l.prover.Inclusion(ctx, index, size)
	if err != nil {
		return InclusionProof{}, err
	}
	leaf := store.AuditLeaf(&evs[0])
	return InclusionProof{Index: index, TreeSize: size, LeafHash: LeafHash(leaf), Hashes: hashes, Event: evs[0], Leaf: leaf}, nil
}

// Consistency proves that the tree of size1 is a prefix of the tree of
// size2 (the current tree when size2 is 0); it returns size2 and the proof.
func (l *Log) Consistency(ctx context.Context, size1, size2 uint64) (uint64, [][]byte, error) {
	head, err := l.st.AuditHead(ctx)
	if err != nil {
		return 0, nil, err
	}
	if size2 == 0 {
		size2 = head.Size
	}
	if size1 == 0 || size1 > size2 || size2 > head.Size {
		return 0, nil, fmt.Errorf("audit: consistency from %d to %d: %w (sizes from 1, in order, up to %d)", size1, size2, ErrOutOfRange, head.Size)
	}
	hashes, err := l.prover.Consistency(ctx, size1, size2)
	return size2, hashes, err
}

// ErrOutOfRange: an index or size the log does not have.
var ErrOutOfRange = errors.New("out of range")

// Cosign takes a checkpoint note that carries, besides the log's own
// signature, signatures of witnesses (keys in witnesses): the text must be
// that of the stored checkpoint of its size. The stored note gets the
// log's signature and every valid witness signature (others are dropped);
// it returns the stored note and the witnesses that signed.
func (l *Log) Cosign(ctx context.Context, text []byte, witnesses []string) (string, []string, error) {
	vs := []note.Verifier{l.verifier}
	for _, w := range witnesses {
		v, err := note.NewVerifier(w)
		if err != nil {
			return "", nil, fmt.Errorf("audit: witness key %q: %w", w, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(text, note.VerifierList(vs...))
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	cp, _, _, err := log.ParseCheckpoint(text, l.origin, l.verifier)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadCosignature, err)
	}
	stored, err := l.st.GetAuditCheckpoint(ctx, cp.Size)
	if err != nil {
		return "", nil, err
	}
	sn, err := note.Open([]byte(stored.Note), note.VerifierList(vs...))
	if err != nil || sn.Text != n.Text {
		return "", nil, fmt.Errorf("%w: not the text of the checkpoint of size %d", ErrBadCosignature, cp.Size)
	}
	// Keep what the stored note had and add the new witnesses'.
	have := map[string]bool{}
	for _, sig := range sn.Sigs {
		have[sig.Name] = true
	}
	var signed []string
	for _, sig := range n.Sigs {
		if sig.Name == l.origin {
			continue
		}
		signed = append(signed, sig.Name)
		if !have[sig.Name] {
			sn.Sigs = append(sn.Sigs, sig)
			have[sig.Name] = true
		}
	}
	if len(signed) == 0 {
		return "", nil, fmt.Errorf("%w: no signature of a configured witness", ErrBadCosignature)
	}
	out, err := note.Sign(sn)
	if err != nil {
		return "", nil, err
	}
	if err := l.st.SetAuditCheckpointNote(ctx, cp.Size, string(out)); err != nil {
		return "", nil, err
	}
	return string(out), signed, nil
}

// ErrBadCosignature: a cosigned checkpoint that is not the log's, or
// carries no valid signature of a configured witness.
var ErrBadCosignature = errors.New("not a cosigned checkpoint of this log")

// Witnessed checks that a checkpoint note carries a valid signature of
// every witness key.
func Witnessed(text []byte, witnesses []string) error {
	for _, w := range witnesses {
		v, err := note.NewVerifier(strings.TrimSpace(w))
		if err != nil {
			return fmt.Errorf("witness key: %w", err)
		}
		if _, err := note.Open(text, note.VerifierList(v)); err != nil {
			return fmt.Errorf("the checkpoint lacks the signature of witness %s: %w", v.Name(), err)
		}
	}
	return nil
}
