package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// Errors Open and Rewrap return, tested with errors.Is. Their messages name
// the purpose at most: never the id (ids can be secrets' digests) nor any
// byte of plaintext.
var (
	// ErrMalformed means the input is too short to be a sealed envelope.
	ErrMalformed = errors.New("not a sealed envelope")
	// ErrUnknownVersion means the envelope's format version is not one this
	// binary reads.
	ErrUnknownVersion = errors.New("unknown envelope version")
	// ErrWrongKey means the envelope was sealed under a master key that is
	// neither the current one nor one of the old ones configured.
	ErrWrongKey = errors.New("sealed under a master key that is not configured")
	// ErrTampered means the envelope failed authentication: its bytes were
	// changed, or it was sealed for another purpose or id.
	ErrTampered = errors.New("sealed data failed authentication (tampered, or sealed for another purpose or id)")
)

const (
	// MasterKeySize is the length of a master key in bytes.
	MasterKeySize = 32

	envelopeV1 = 1
	keyIDSize  = 8
	// headerSize is the version byte and the master key id.
	headerSize = 1 + keyIDSize
	// Overhead is how many bytes Seal adds to the plaintext: header,
	// nonce and GCM tag.
	Overhead = headerSize + 12 + 16

	maxPurpose = 255
	maxID      = 1<<16 - 1
)

// masterKey is one master key with the per-purpose AEADs derived from it.
type masterKey struct {
	id   [keyIDSize]byte
	ikm  []byte
	aead sync.Map // purpose -> cipher.AEAD
}

func newMasterKey(k []byte) (*masterKey, error) {
	if len(k) != MasterKeySize {
		return nil, fmt.Errorf("keyring: master key must be %d bytes, not %d", MasterKeySize, len(k))
	}
	var zero [MasterKeySize]byte
	if subtle.ConstantTimeCompare(k, zero[:]) == 1 {
		return nil, errors.New("keyring: master key is all zero bytes")
	}
	id, err := hkdf.Key(sha256.New, k, nil, "verity keyring v1 key id", keyIDSize)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive master key id: %w", err)
	}
	m := &masterKey{ikm: append([]byte(nil), k...)}
	copy(m.id[:], id)
	return m, nil
}

// ID is the master key's public identifier: 8 bytes derived from the key
// with HKDF, so it tells keys apart without revealing anything about them.
func (m *masterKey) ID() string { return hex.EncodeToString(m.id[:]) }

// forPurpose returns the AES-256-GCM AEAD keyed with this master key's
// subkey for purpose. Each purpose has its own subkey, so the random-nonce
// budget of GCM (2^32 messages per key) is per purpose, and a subkey
// recovered from one use tells nothing about another.
func (m *masterKey) forPurpose(purpose string) (cipher.AEAD, error) {
	if a, ok := m.aead.Load(purpose); ok {
		return a.(cipher.AEAD), nil
	}
	sub, err := hkdf.Key(sha256.New, m.ikm, nil, "verity keyring v1 seal "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("keyring: derive %s subkey: %w", purpose, err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s subkey: %w", purpose, err)
	}
	a, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("keyring: %s subkey: %w", purpose, err)
	}
	got, _ := m.aead.LoadOrStore(purpose, a)
	return got.(cipher.AEAD), nil
}

// sealer seals with one master key and opens with it or any old one.
type sealer struct {
	current *masterKey
	old     []*masterKey
}

func newSealer(current []byte, old [][]byte) (*sealer, error) {
	cur, err := newMasterKey(current)
	if err != nil {
		return nil, err
	}
	s := &sealer{current: cur}
	for i, k := range old {
		m, err := newMasterKey(k)
		if err != nil {
			return nil, fmt.Errorf("old master key %d: %w", i+1, err)
		}
		if m.id == cur.id {
			continue // the current key listed again opens nothing new
		}
		s.old = append(s.old, m)
	}
	return s, nil
}

func checkBinding(purpose, id string) error {
	if purpose == "" || len(purpose) > maxPurpose {
		return fmt.Errorf("keyring: purpose must be 1 to %d bytes", maxPurpose)
	}
	if len(id) > maxID {
		return fmt.Errorf("keyring: %s id must be at most %d bytes", purpose, maxID)
	}
	return nil
}

// aad is what the GCM tag authenticates besides the ciphertext: the
// envelope header, then purpose and id with length prefixes, so that no
// two (purpose, id) pairs share a byte string.
func aad(header []byte, purpose, id string) []byte {
	b := make([]byte, 0, len(header)+2+len(purpose)+2+len(id))
	b = append(b, header...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(purpose)))
	b = append(b, purpose...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	return append(b, id...)
}

func (s *sealer) seal(purpose, id string, plaintext []byte) ([]byte, error) {
	if err := checkBinding(purpose, id); err != nil {
		return nil, err
	}
	a, err := s.current.forPurpose(purpose)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerSize, Overhead+len(plaintext))
	out[0] = envelopeV1
	copy(out[1:headerSize], s.current.id[:])
	return a.Seal(out, nil, plaintext, aad(out[:headerSize], purpose, id)), nil
}

// keyFor returns the master key an envelope names.
func (s *sealer) keyFor(sealed []byte) (*masterKey, error) {
	if len(sealed) < Overhead {
		return nil, ErrMalformed
	}
	if sealed[0] != envelopeV1 {
		return nil, fmt.Errorf("%w %d", ErrUnknownVersion, sealed[0])
	}
	kid := sealed[1:headerSize]
	if subtle.ConstantTimeCompare(kid, s.current.id[:]) == 1 {
		return s.current, nil
	}
	for _, m := range s.old {
		if subtle.ConstantTimeCompare(kid, m.id[:]) == 1 {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w (key id %s)", ErrWrongKey, hex.EncodeToString(kid))
}

func (s *sealer) open(purpose, id string, sealed []byte) ([]byte, error) {
	if err := checkBinding(purpose, id); err != nil {
		return nil, err
	}
	m, err := s.keyFor(sealed)
	if err != nil {
		return nil, fmt.Errorf("keyring: open %s: %w", purpose, err)
	}
	a, err := m.forPurpose(purpose)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nil, sealed[headerSize:], aad(sealed[:headerSize], purpose, id))
	if err != nil {
		return nil, fmt.Errorf("keyring: open %s: %w", purpose, ErrTampered)
	}
	return pt, nil
}

// needsRewrap reports whether sealed is not in the current format under
// the current master key. It does not authenticate sealed.
func (s *sealer) needsRewrap(sealed []byte) bool {
	return len(sealed) < headerSize || sealed[0] != envelopeV1 ||
		subtle.ConstantTimeCompare(sealed[1:headerSize], s.current.id[:]) != 1
}

func (s *sealer) rewrap(purpose, id string, sealed []byte) ([]byte, error) {
	pt, err := s.open(purpose, id, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return s.seal(purpose, id, pt)
}
