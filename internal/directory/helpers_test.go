package directory

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/verityhq/verity/internal/store"
)

// memReader is a store.Reader over a slice, sorted by (kind, id). It
// stands in for the store only where the engine is not under test: the
// compile-cost benchmark.
type memReader struct{ objs []store.Object }

func newMemReader(objs []store.Object) *memReader {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b store.Object) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return &memReader{objs: objs}
}

func (m *memReader) Get(_ context.Context, kind, id string) (store.Object, error) {
	for _, o := range m.objs {
		if o.Kind == kind && o.ID == id {
			return o, nil
		}
	}
	return store.Object{}, store.ErrNotFound
}

func (m *memReader) GetByKey(_ context.Context, kind, key string) (store.Object, error) {
	for _, o := range m.objs {
		if o.Kind == kind && o.Key == key && key != "" {
			return o, nil
		}
	}
	return store.Object{}, store.ErrNotFound
}

func (m *memReader) List(_ context.Context, kind string, opts store.ListOptions) ([]store.Object, error) {
	i, _ := slices.BinarySearchFunc(m.objs, [2]string{kind, opts.AfterID}, func(o store.Object, k [2]string) int {
		if c := strings.Compare(o.Kind, k[0]); c != 0 {
			return c
		}
		return strings.Compare(o.ID, k[1])
	})
	var out []store.Object
	for ; i < len(m.objs) && m.objs[i].Kind == kind; i++ {
		if m.objs[i].ID == opts.AfterID {
			continue
		}
		out = append(out, m.objs[i])
		if opts.Limit > 0 && len(out) == opts.Limit {
			break
		}
	}
	return out, nil
}

// openStore opens a real SQLite store in a temporary directory.
func openStore(tb testing.TB) store.Store {
	tb.Helper()
	st, err := store.Open(context.Background(), store.Config{DSN: filepath.Join(tb.TempDir(), "verity.db")}, nil)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// putAll writes objs in one transaction and returns the new revision.
func putAll(tb testing.TB, st store.Store, objs []store.Object) int64 {
	tb.Helper()
	rev, err := st.Update(context.Background(), func(ctx context.Context, tx store.Tx) error {
		for _, o := range objs {
			if err := tx.Put(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("write %d objects: %v", len(objs), err)
	}
	return rev
}

// buildFromStore writes objs to a fresh SQLite store and builds a snapshot
// from one consistent view of it.
func buildFromStore(tb testing.TB, objs []store.Object) *Snapshot {
	tb.Helper()
	st := openStore(tb)
	putAll(tb, st, objs)
	var snap *Snapshot
	err := st.View(context.Background(), func(ctx context.Context, r store.Reader, rev int64) error {
		var err error
		snap, err = Build(ctx, r, rev)
		return err
	})
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	return snap
}

// object encodes a normalised, valid resource as a store object.
func object(tb testing.TB, r Resource) store.Object {
	tb.Helper()
	r.Normalize()
	if err := r.Validate(); err != nil {
		tb.Fatalf("invalid %T %s: %v", r, r.ObjectID(), err)
	}
	for _, d := range Kinds() {
		if o, err := d.ObjectOf(r); err == nil {
			return o
		}
	}
	tb.Fatalf("no kind encodes %T", r)
	return store.Object{}
}

// mustJSON marshals v or fails the test.
func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// id makes a readable, valid GUID from a small number and a kind letter
// ("u", "g", "s", "a"), so test failures show which object is which.
func id(kind string, n int) string {
	prefix := map[string]string{"u": "00000000", "g": "11111111", "s": "22222222", "a": "33333333", "l": "44444444", "r": "55555555", "x": "99999999"}[kind]
	return prefix + "-0000-4000-8000-" + strings.Repeat("0", 12-len(itoa(n))) + itoa(n)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func ptr[T any](v T) *T { return &v }

func storeObject(kind, id, body string) store.Object {
	return store.Object{Kind: kind, ID: id, Body: []byte(body)}
}
