package keyring

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func mustSealer(t *testing.T, current []byte, old ...[]byte) *sealer {
	t.Helper()
	s, err := newSealer(current, old)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, newMasterKey32(t))
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 1000)} {
		sealed, err := s.seal("totp secret", "user-a", pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != len(pt)+Overhead {
			t.Fatalf("sealed %d bytes into %d; want %d", len(pt), len(sealed), len(pt)+Overhead)
		}
		got, err := s.open("totp secret", "user-a", sealed)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("open: %q, %v", got, err)
		}
	}
	a, _ := s.seal("p", "id", []byte("same"))
	b, _ := s.seal("p", "id", []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one plaintext are identical: the nonce is not random")
	}
}

// TestSealBinding checks that an envelope opens only for its own purpose
// and id, and that every kind of damage is refused with its own error and
// a message that never holds the plaintext or the id.
func TestSealBinding(t *testing.T) {
	t.Parallel()
	s := mustSealer(t, newMasterKey32(t))
	other := mustSealer(t, newMasterKey32(t))
	secret := []byte("JBSWY3DPEHPK3PXP-user-a-totp")
	sealed, err := s.seal("totp secret", "user-a", secret)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name        string
		sl          *sealer
		purpose, id string
		in          []byte
		want        error
	}{
		{"other user", s, "totp secret", "user-b", sealed, ErrTampered},
		{"other purpose", s, "recovery code", "user-a", sealed, ErrTampered},
		{"id moved into purpose", s, "totp secretuser-a", "", sealed, ErrTampered},
		{"other master key", other, "totp secret", "user-a", sealed, ErrWrongKey},
		{"version byte", s, "totp secret", "user-a", flip(0), ErrUnknownVersion},
		{"key id", s, "totp secret", "user-a", flip(3), ErrWrongKey},
		{"nonce", s, "totp secret", "user-a", flip(headerSize + 2), ErrTampered},
		{"ciphertext", s, "totp secret", "user-a", flip(headerSize + 12 + 1), ErrTampered},
		{"tag", s, "totp secret", "user-a", flip(len(sealed) - 1), ErrTampered},
		{"truncated", s, "totp secret", "user-a", sealed[:Overhead-1], ErrMalformed},
		{"empty", s, "totp secret", "user-a", nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.sl.open(tt.purpose, tt.id, tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("open: %v; want %v", err, tt.want)
			}
			if got != nil {
				t.Fatal("a failed open returned bytes")
			}
			msg := err.Error()
			if strings.Contains(msg, "JBSWY3DP") || strings.Contains(strings.ReplaceAll(msg, tt.purpose, ""), "user-a") {
				t.Fatalf("error %q leaks the plaintext or the id", msg)
			}
		})
	}
}

func TestSealRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, k := range [][]byte{nil, make([]byte, 16), make([]byte, 33), make([]byte, 32)} {
		if _, err := newSealer(k, nil); err == nil {
			t.Errorf("a %d-byte master key (all zero) was accepted", len(k))
		}
	}
	s := mustSealer(t, newMasterKey32(t))
	if _, err := s.seal("", "id", []byte("x")); err == nil {
		t.Error("empty purpose accepted")
	}
	if _, err := s.seal(strings.Repeat("p", maxPurpose+1), "id", []byte("x")); err == nil {
		t.Error("overlong purpose accepted")
	}
	if _, err := s.seal("p", strings.Repeat("i", maxID+1), []byte("x")); err == nil {
		t.Error("overlong id accepted")
	}
}

// TestOldMasterKeysOpenButNeverSeal walks a master key rotation: the old
// key opens what it sealed, the new one seals, Rewrap moves data across.
func TestOldMasterKeysOpenButNeverSeal(t *testing.T) {
	t.Parallel()
	oldKey, newKey := newMasterKey32(t), newMasterKey32(t)
	before := mustSealer(t, oldKey)
	sealedOld, _ := before.seal("p", "id", []byte("hello"))

	after := mustSealer(t, newKey, oldKey)
	if got, err := after.open("p", "id", sealedOld); err != nil || string(got) != "hello" {
		t.Fatalf("old key does not open: %q %v", got, err)
	}
	if !after.needsRewrap(sealedOld) {
		t.Fatal("data under the old key does not need a rewrap")
	}
	sealedNew, _ := after.seal("p", "id", []byte("hello"))
	if after.needsRewrap(sealedNew) {
		t.Fatal("fresh data needs a rewrap")
	}
	if _, err := before.open("p", "id", sealedNew); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("new data opened with only the old key: %v", err)
	}
	rewrapped, err := after.rewrap("p", "id", sealedOld)
	if err != nil {
		t.Fatal(err)
	}
	if after.needsRewrap(rewrapped) {
		t.Fatal("rewrapped data still needs a rewrap")
	}
	onlyNew := mustSealer(t, newKey)
	if got, err := onlyNew.open("p", "id", rewrapped); err != nil || string(got) != "hello" {
		t.Fatalf("rewrapped data does not open under the new key alone: %q %v", got, err)
	}
	if _, err := after.rewrap("p", "other", sealedOld); !errors.Is(err, ErrTampered) {
		t.Fatalf("rewrap under another id: %v", err)
	}
}

// TestMasterKeyCheck checks that nodes sharing a database must share the
// master key, and that an old key listed on a node lets it start while the
// check record moves to the new key.
func TestMasterKeyCheck(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st1, st2 := storetest.OpenDSN(t, dsn), storetest.OpenDSN(t, dsn)
		k1, k2 := newMasterKey32(t), newMasterKey32(t)
		openKeyring(t, st1, k1, Options{})

		_, err := Open(ctx, st2, k2, Options{})
		if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "same master key") {
			t.Fatalf("a node with another master key opened: %v", err)
		}

		// Rotation: k2 seals, k1 still opens.
		kr := openKeyring(t, st2, k2, Options{OldMasterKeys: [][]byte{k1}})
		r, err := st2.GetRecord(ctx, kindKeyring, idMasterCheck)
		if err != nil {
			t.Fatal(err)
		}
		if kr.NeedsRewrap(r.Body) {
			t.Fatal("the check record was not moved to the new master key")
		}
		if _, err := Open(ctx, st1, k1, Options{}); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("a node with only the retired master key opened: %v", err)
		}
		// The signing keys moved to the new master key too.
		openKeyring(t, st1, k2, Options{})
	})
}

// TestKeyringSealsWithAAD checks the exported methods over a real store.
func TestKeyringSealsWithAAD(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	kr := openKeyring(t, st, newMasterKey32(t), Options{})
	sealed, err := kr.Seal("totp secret", "user-a", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRecord(context.Background(), store.Record{Kind: "totp", ID: "user-a", Body: sealed}); err != nil {
		t.Fatal(err)
	}
	r, err := st.GetRecord(context.Background(), "totp", "user-a")
	if err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, "the stored record", r.Body, []byte("s3cret"))
	if got, err := kr.Open("totp secret", "user-a", r.Body); err != nil || string(got) != "s3cret" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := kr.Open("totp secret", "user-b", r.Body); !errors.Is(err, ErrTampered) {
		t.Fatalf("user B opened user A's secret: %v", err)
	}
	if len(kr.MasterKeyID()) != 2*keyIDSize {
		t.Fatalf("master key id %q", kr.MasterKeyID())
	}
}
