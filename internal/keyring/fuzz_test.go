package keyring

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store/storetest"
)

// FuzzOpen feeds arbitrary envelopes to Open: it must never panic, and
// whatever it opens must be the one plaintext sealed, for its purpose and
// id.
func FuzzOpen(f *testing.F) {
	s, err := newSealer(bytes.Repeat([]byte{7}, MasterKeySize), nil)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.seal("p", "id", []byte("plaintext"))
	f.Add(good, "p", "id")
	f.Add(good[:Overhead], "p", "id")
	f.Add([]byte{2, 0, 0}, "p", "")
	f.Fuzz(func(t *testing.T, sealed []byte, purpose, id string) {
		pt, err := s.open(purpose, id, sealed)
		// Fuzz workers seal good again with another nonce, so an envelope
		// that opens is judged by what it holds, not by its bytes.
		if err == nil && !(purpose == "p" && id == "id" && string(pt) == "plaintext") {
			t.Fatalf("opened an envelope nobody sealed: %q", pt)
		}
	})
}

func FuzzParseMasterKeys(f *testing.F) {
	f.Add([]byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"))
	f.Add(bytes.Repeat([]byte{0xfe}, MasterKeySize))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseMasterKeys(b)
		if err != nil {
			if len(b) >= 8 && strings.Contains(err.Error(), string(b)) {
				t.Fatal("error quotes the file")
			}
			return
		}
		for _, k := range keys {
			if len(k) != MasterKeySize {
				t.Fatalf("a %d-byte key", len(k))
			}
		}
	})
}

// FuzzVerify feeds arbitrary tokens to Verify: it must never panic nor
// accept anything but the one token the keyring signed.
func FuzzVerify(f *testing.F) {
	k := openKeyring(f, storetest.OpenSQLite(f), newMasterKey32(f), Options{})
	good, _ := mustSign(f, k, `{"sub":"a"}`)
	f.Add(good)
	f.Add(good + ".")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		p, _, err := k.Verify(context.Background(), tok)
		if err == nil && (tok != good || string(p) != `{"sub":"a"}`) {
			t.Fatalf("verified %q", tok)
		}
	})
}
