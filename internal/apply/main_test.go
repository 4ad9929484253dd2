package apply

import (
	"testing"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engines runs fn as one subtest per store engine, each on a new, empty
// database.
func engines(t *testing.T, fn func(t *testing.T, open func(t *testing.T) store.Store)) {
	t.Helper()
	for _, e := range []struct {
		name string
		open func(t *testing.T) store.Store
	}{
		{"sqlite", func(t *testing.T) store.Store { return storetest.OpenSQLite(t) }},
		{"postgres", func(t *testing.T) store.Store { return storetest.OpenPostgres(t) }},
	} {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			fn(t, e.open)
		})
	}
}
