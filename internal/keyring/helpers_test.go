package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engines lists the real stores every store-backed test runs against.
// Each dsn function returns a new, empty database; stores opened on the
// same dsn act as nodes sharing it.
var engines = []struct {
	name string
	dsn  func(testing.TB) string
}{
	{"sqlite", storetest.SQLitePath},
	{"postgres", storetest.PostgresDSN},
}

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			f(t, e.dsn(t))
		})
	}
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newMasterKey32(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// openKeyring opens a keyring on st with opts, failing t on error.
func openKeyring(t testing.TB, st store.Store, master []byte, opts Options) *Keyring {
	t.Helper()
	k, err := Open(context.Background(), st, master, opts)
	if err != nil {
		t.Fatalf("open keyring: %v", err)
	}
	return k
}

// signingState reads the stored lifecycle state.
func signingState(t testing.TB, st store.Store) state {
	t.Helper()
	k := &Keyring{st: st}
	s, _, err := k.loadState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// count returns how many keys of the state have status s.
func (s state) count(st status) int {
	n := 0
	for _, e := range s.Keys {
		if e.Status == st {
			n++
		}
	}
	return n
}

func keyRecords(t testing.TB, st store.Store) []store.Record {
	t.Helper()
	rs, err := st.ListRecords(context.Background(), kindSigningKey, subjectKeyring, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// mustNotContain fails t when haystack holds needle.
func mustNotContain(t testing.TB, what string, haystack, needle []byte) {
	t.Helper()
	if len(needle) > 0 && bytes.Contains(haystack, needle) {
		t.Fatalf("%s contains the secret", what)
	}
}
