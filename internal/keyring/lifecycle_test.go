package keyring

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func mustSign(t testing.TB, k *Keyring, payload string) (string, string) {
	t.Helper()
	s, err := k.Signer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign("JWT", []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return tok, s.KeyID()
}

func mustMaintain(t testing.TB, k *Keyring) {
	t.Helper()
	if err := k.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func jwksKIDs(t testing.TB, k *Keyring) []string {
	t.Helper()
	set, err := k.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, key := range set.Keys {
		kids = append(kids, key.KeyID)
	}
	return kids
}

// TestLifecycle walks one key from first use to deletion and its successor
// from publication to signing, with the default durations.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		st := storetest.OpenDSN(t, dsn)
		clk := newClock()
		start := clk.Now()
		k := openKeyring(t, st, newMasterKey32(t), Options{Now: clk.Now})

		s := signingState(t, st)
		if len(s.Keys) != 1 || s.count(statusCurrent) != 1 {
			t.Fatalf("a new keyring's state: %+v", s)
		}
		first := s.Keys[0].KID
		tok1, kid := mustSign(t, k, `{"n":1}`)
		if kid != first || s.Keys[0].Alg != ES256 {
			t.Fatalf("signed with %s; state lists %+v", kid, s.Keys[0])
		}

		// Nothing is due until PublishAhead before RotateEvery.
		clk.Advance(DefaultRotateEvery - DefaultPublishAhead - time.Minute)
		mustMaintain(t, k)
		if got := jwksKIDs(t, k); !slices.Equal(got, []string{first}) {
			t.Fatalf("JWKS before the next key is due: %v", got)
		}

		// The next key is published, not used.
		clk.Advance(time.Minute)
		mustMaintain(t, k)
		mustMaintain(t, k) // idempotent
		s = signingState(t, st)
		if len(s.Keys) != 2 || s.count(statusNext) != 1 || s.count(statusCurrent) != 1 {
			t.Fatalf("after publishing the next key: %+v", s)
		}
		second := s.Keys[s.find(statusNext)].KID
		if due := s.Keys[s.find(statusNext)].ActivateAt; !due.Equal(start.Add(DefaultRotateEvery)) {
			t.Fatalf("next key due at %v; want %v", due, start.Add(DefaultRotateEvery))
		}
		if got := jwksKIDs(t, k); !slices.Equal(got, []string{first, second}) {
			t.Fatalf("JWKS with a next key: %v", got)
		}
		if _, kid := mustSign(t, k, "{}"); kid != first {
			t.Fatalf("signed with the next key %s before it was due", kid)
		}

		// It takes over; the first is retired but still verifies.
		clk.Advance(DefaultPublishAhead)
		mustMaintain(t, k)
		s = signingState(t, st)
		if s.count(statusCurrent) != 1 || s.Keys[s.find(statusCurrent)].KID != second || s.count(statusRetired) != 1 {
			t.Fatalf("after promotion: %+v", s)
		}
		if _, kid := mustSign(t, k, "{}"); kid != second {
			t.Fatalf("signed with %s after promotion", kid)
		}
		if got := jwksKIDs(t, k); !slices.Equal(got, []string{second, first}) {
			t.Fatalf("JWKS after promotion: %v", got)
		}
		if p, _, err := k.Verify(ctx, tok1); err != nil || string(p) != `{"n":1}` {
			t.Fatalf("a token of the retired key: %q %v", p, err)
		}

		// Retired keys stay for RetainAfter and the stale-view margin.
		clk.Advance(DefaultRetainAfter + staleLimit - time.Second)
		mustMaintain(t, k)
		if _, _, err := k.Verify(ctx, tok1); err != nil {
			t.Fatalf("retired key dropped early: %v", err)
		}
		clk.Advance(time.Second)
		mustMaintain(t, k)
		s = signingState(t, st)
		if len(s.Keys) != 1 || s.Keys[0].KID != second {
			t.Fatalf("after deletion: %+v", s)
		}
		if rs := keyRecords(t, st); len(rs) != 1 || rs[0].ID != second {
			t.Fatalf("key records after deletion: %d", len(rs))
		}
		if _, _, err := k.Verify(ctx, tok1); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("a token of a deleted key verified: %v", err)
		}
	})
}

// TestMaintainCatchesUp checks a node that was down past a rotation: it
// publishes the next key and still waits PublishAhead before signing.
func TestMaintainCatchesUp(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	clk := newClock()
	k := openKeyring(t, st, newMasterKey32(t), Options{Now: clk.Now})
	clk.Advance(90 * 24 * time.Hour)
	mustMaintain(t, k)
	s := signingState(t, st)
	n := s.find(statusNext)
	if n < 0 || !s.Keys[n].ActivateAt.Equal(clk.Now().Add(DefaultPublishAhead)) {
		t.Fatalf("after 90 days away: %+v", s)
	}
}

func TestRotate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	clk := newClock()
	k := openKeyring(t, st, newMasterKey32(t), Options{Now: clk.Now})
	tok1, first := mustSign(t, k, "{}")

	// No next key: a new one takes over at once.
	second, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, kid := mustSign(t, k, "{}"); kid != second || second == first {
		t.Fatalf("after Rotate signing with %s; Rotate said %s (first %s)", kid, second, first)
	}
	if _, _, err := k.Verify(ctx, tok1); err != nil {
		t.Fatalf("token of the replaced key: %v", err)
	}

	// With a next key published, Rotate promotes it.
	clk.Advance(DefaultRotateEvery - DefaultPublishAhead)
	mustMaintain(t, k)
	s := signingState(t, st)
	next := s.Keys[s.find(statusNext)].KID
	got, err := k.Rotate(ctx)
	if err != nil || got != next {
		t.Fatalf("Rotate gave %s (%v); want the published next key %s", got, err, next)
	}
	s = signingState(t, st)
	// The first key, retired 29 days ago, is gone; the second is retired.
	if s.count(statusCurrent) != 1 || s.count(statusNext) != 0 || s.count(statusRetired) != 1 {
		t.Fatalf("after the second Rotate: %+v", s)
	}
}

// TestAlgorithmChange switches a database from ES256 to EdDSA: the new key
// is published first, then signs, and old tokens keep verifying.
func TestAlgorithmChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	clk := newClock()
	master := newMasterKey32(t)
	es := openKeyring(t, st, master, Options{Now: clk.Now})
	tokES, _ := mustSign(t, es, "{}")

	ed := openKeyring(t, st, master, Options{Now: clk.Now, Algorithm: EdDSA})
	if s, _ := ed.Signer(ctx); s.Algorithm() != ES256 {
		t.Fatal("signed with the new algorithm before publishing it")
	}
	clk.Advance(DefaultPublishAhead)
	mustMaintain(t, ed)
	tokEd, _ := mustSign(t, ed, "{}")
	s, _ := ed.Signer(ctx)
	if s.Algorithm() != EdDSA {
		t.Fatalf("signing with %s after the switch", s.Algorithm())
	}
	for _, tok := range []string{tokES, tokEd} {
		if _, _, err := ed.Verify(ctx, tok); err != nil {
			t.Fatalf("EdDSA keyring: %v", err)
		}
	}
	// A node still configured for ES256 verifies EdDSA tokens of keys
	// that are published.
	if _, _, err := es.Verify(ctx, tokEd); err != nil {
		t.Fatalf("ES256 keyring on an EdDSA token of a published key: %v", err)
	}
}

// TestConcurrentMaintain runs two nodes' keyrings on one database through
// many rotations, each calling Maintain from several goroutines at once
// while signing and verifying each other's tokens.
func TestConcurrentMaintain(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk := newClock()
		master := newMasterKey32(t)
		opts := Options{Now: clk.Now, RotateEvery: time.Hour, PublishAhead: 10 * time.Minute, RetainAfter: 10 * time.Minute}
		stores := []store.Store{storetest.OpenDSN(t, dsn), storetest.OpenDSN(t, dsn)}

		// Both nodes start on an empty database at once.
		nodes := make([]*Keyring, 2)
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				k, err := Open(ctx, stores[i], master, opts)
				if err != nil {
					t.Error(err)
				}
				nodes[i] = k
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if s := signingState(t, stores[0]); len(s.Keys) != 1 || s.count(statusCurrent) != 1 {
			t.Fatalf("two nodes starting together made %+v", s)
		}

		minted := 1
		for round := range 30 {
			clk.Advance(7 * time.Minute)
			before := signingState(t, stores[0])
			var wg sync.WaitGroup
			for g := range 8 {
				node, other := nodes[g%2], nodes[(g+1)%2]
				wg.Go(func() {
					if err := node.Maintain(ctx); err != nil {
						t.Errorf("round %d: maintain: %v", round, err)
					}
				})
				wg.Go(func() {
					tok, err := signOnce(node)
					if err != nil {
						t.Errorf("round %d: sign: %v", round, err)
						return
					}
					if _, _, err := other.Verify(ctx, tok); err != nil {
						t.Errorf("round %d: the other node does not verify: %v", round, err)
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			s := signingState(t, stores[0])
			if s.count(statusCurrent) != 1 || s.count(statusNext) > 1 {
				t.Fatalf("round %d: %+v", round, s)
			}
			added := 0
			for _, e := range s.Keys {
				if !before.has(e.KID) {
					added++
				}
			}
			if added > 1 {
				t.Fatalf("round %d: %d keys made in one round: %+v", round, added, s)
			}
			minted += added
			// Losers delete the keys they made: every record is listed.
			if rs := keyRecords(t, stores[1]); len(rs) != len(s.Keys) {
				t.Fatalf("round %d: %d key records for %d listed keys", round, len(rs), len(s.Keys))
			}
		}
		// 30 rounds of 7 minutes are 210 minutes: three rotations.
		if minted != 4 {
			t.Fatalf("made %d keys in 210 minutes of hourly rotation; want 4", minted)
		}
	})
}

func signOnce(k *Keyring) (string, error) {
	s, err := k.Signer(context.Background())
	if err != nil {
		return "", err
	}
	return s.Sign("", []byte(`{"sub":"x"}`))
}

// TestJWKSHasNoPrivateParameters checks every published key, in every
// state and for both algorithms, and the stored records.
func TestJWKSHasNoPrivateParameters(t *testing.T) {
	t.Parallel()
	for _, alg := range []jose.SignatureAlgorithm{ES256, EdDSA} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.OpenSQLite(t)
			clk := newClock()
			// RetainAfter beyond RotateEvery keeps the retired key until
			// the next one is published.
			k := openKeyring(t, st, newMasterKey32(t), Options{Now: clk.Now, Algorithm: alg, RetainAfter: 2 * DefaultRotateEvery})
			if _, err := k.Rotate(ctx); err != nil { // a retired key
				t.Fatal(err)
			}
			clk.Advance(DefaultRotateEvery) // a next key
			mustMaintain(t, k)
			if s := signingState(t, st); s.count(statusNext) != 1 || s.count(statusRetired) != 1 {
				t.Fatalf("want a key in each state: %+v", s)
			}

			set, err := k.JWKS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := k.JWKSJSON(ctx)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := json.Marshal(set)
			if string(again) != string(doc) {
				t.Fatal("JWKSJSON differs from JWKS")
			}
			var parsed struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(doc, &parsed); err != nil {
				t.Fatal(err)
			}
			if len(parsed.Keys) != 3 {
				t.Fatalf("%d keys published; want 3", len(parsed.Keys))
			}
			public := map[string]bool{"kty": true, "crv": true, "x": true, "y": true, "kid": true, "alg": true, "use": true}
			for _, key := range parsed.Keys {
				for name := range key {
					if !public[name] {
						t.Fatalf("published key has parameter %q: %s", name, doc)
					}
				}
				if key["alg"] != string(alg) || key["use"] != "sig" {
					t.Fatalf("published key %v", key)
				}
			}
			for _, key := range set.Keys {
				if !key.IsPublic() {
					t.Fatalf("JWKS key %s is not public", key.KeyID)
				}
			}

			// No private key appears in the JWKS or in any stored record.
			var haystack []byte
			haystack = append(haystack, doc...)
			for _, r := range keyRecords(t, st) {
				haystack = append(haystack, r.Body...)
			}
			v, err := k.current(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, kk := range v.byKID {
				p := kk.signer.priv
				der, _ := x509.MarshalPKCS8PrivateKey(p)
				mustNotContain(t, "JWKS or key records", haystack, der)
				switch p := p.(type) {
				case *ecdsa.PrivateKey:
					d, _ := p.Bytes()
					mustNotContain(t, "JWKS or key records", haystack, d)
					b64, _ := json.Marshal(d)
					mustNotContain(t, "JWKS or key records", haystack, b64[1:len(b64)-1])
				case ed25519.PrivateKey:
					mustNotContain(t, "JWKS or key records", haystack, p.Seed())
				}
			}
		})
	}
}

// countingStore counts record reads, to show what the cache saves.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (c *countingStore) GetRecord(ctx context.Context, kind, id string) (store.Record, error) {
	c.gets.Add(1)
	return c.Store.GetRecord(ctx, kind, id)
}

func TestSigningUsesTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := &countingStore{Store: storetest.OpenSQLite(t)}
	clk := newClock()
	k := openKeyring(t, cs, newMasterKey32(t), Options{Now: clk.Now})
	mustSign(t, k, "{}")
	base := cs.gets.Load()
	for range 100 {
		mustSign(t, k, "{}")
		if _, err := k.JWKS(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := cs.gets.Load() - base; n != 0 {
		t.Fatalf("100 signatures read %d records", n)
	}
	clk.Advance(refreshEvery)
	mustSign(t, k, "{}")
	if n := cs.gets.Load() - base; n != 1 {
		t.Fatalf("a refresh read %d records; want the state alone", n)
	}
}

// TestKeyRecordBoundToItsID checks that a key record's body copied under
// another key's id does not load: its seal names the original kid.
func TestKeyRecordBoundToItsID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	clk := newClock()
	master := newMasterKey32(t)
	k := openKeyring(t, st, master, Options{Now: clk.Now})
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rs := keyRecords(t, st)
	if len(rs) != 2 {
		t.Fatalf("%d key records", len(rs))
	}
	rs[0].Body = rs[1].Body
	if _, err := st.UpdateRecord(ctx, rs[0]); err != nil {
		t.Fatal(err)
	}
	fresh := openKeyring(t, st, master, Options{Now: clk.Now})
	if _, err := fresh.JWKS(ctx); !errors.Is(err, ErrTampered) {
		t.Fatalf("a swapped key record loaded: %v", err)
	}
}

func TestOrphanKeysAreDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	k := openKeyring(t, st, newMasterKey32(t), Options{})
	kk, body, err := k.generateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRecord(ctx, store.Record{Kind: kindSigningKey, ID: kk.kid, Subject: subjectKeyring, Body: body}); err != nil {
		t.Fatal(err)
	}
	mustMaintain(t, k)
	if n := len(keyRecords(t, st)); n != 2 {
		t.Fatalf("a fresh unlisted key was deleted (%d records): another node may be about to list it", n)
	}
	k.orphanAge = 0
	mustMaintain(t, k)
	if rs := keyRecords(t, st); len(rs) != 1 || rs[0].ID == kk.kid {
		t.Fatalf("the unlisted key was kept (%d records)", len(rs))
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	master := newMasterKey32(t)
	for _, o := range []Options{
		{Algorithm: jose.HS256},
		{Algorithm: "none"},
		{RotateEvery: time.Hour, PublishAhead: time.Hour},
		{RetainAfter: -time.Second},
		{OldMasterKeys: [][]byte{make([]byte, 16)}},
	} {
		if _, err := Open(context.Background(), st, master, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestNoStateMeansNoSigner(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	s, err := newSealer(newMasterKey32(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{}
	if err := o.fill(); err != nil {
		t.Fatal(err)
	}
	k := &Keyring{st: st, seal: s, opts: o}
	if _, err := k.Signer(context.Background()); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("signer of an empty database: %v", err)
	}
	if doc, err := k.JWKSJSON(context.Background()); err != nil || string(doc) != `{"keys":[]}` {
		t.Fatalf("JWKS of an empty database: %s %v", doc, err)
	}
}

// TestMissingKeyRecords checks that a retired key whose record is already
// gone is left out of the JWKS, while a missing current key is an error.
func TestMissingKeyRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.OpenSQLite(t)
	master := newMasterKey32(t)
	k := openKeyring(t, st, master, Options{})
	_, first := mustSign(t, k, "{}")
	second, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteRecord(ctx, kindSigningKey, first); err != nil {
		t.Fatal(err)
	}
	fresh := openKeyring(t, st, master, Options{})
	if got := jwksKIDs(t, fresh); !slices.Equal(got, []string{second}) {
		t.Fatalf("JWKS without the retired key's record: %v", got)
	}
	if err := st.DeleteRecord(ctx, kindSigningKey, second); err != nil {
		t.Fatal(err)
	}
	fresh = openKeyring(t, st, master, Options{})
	if _, err := fresh.Signer(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("signer without the current key's record: %v", err)
	}
}

func TestRunMaintains(t *testing.T) {
	t.Parallel()
	st := storetest.OpenSQLite(t)
	clk := newClock()
	k := openKeyring(t, st, newMasterKey32(t), Options{Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, 10*time.Millisecond)
	}()
	clk.Advance(DefaultRotateEvery)
	deadline := time.Now().Add(10 * time.Second)
	for signingState(t, st).count(statusNext) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not publish the next key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}
