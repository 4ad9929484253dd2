package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/verityhq/verity/internal/store"
)

// Open a SQLite store, write two objects in one revision and read what
// changed, as a node keeping a snapshot up to date would.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "verity-example-")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(dir, "verity.db")}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	rev, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if err := tx.Create(ctx, store.Object{Kind: "user", ID: "u1", Key: "alice@example.com", Body: []byte(`{"displayName":"Alice"}`)}); err != nil {
			return err
		}
		return tx.Create(ctx, store.Object{Kind: "group", ID: "g1", Body: []byte(`{"displayName":"Finance"}`)})
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	changes, _ := s.Changes(ctx, rev-1, 100)
	for _, c := range changes {
		fmt.Println(c.Revision, c.Op, c.Kind, c.ID)
	}
	u, _ := s.GetByKey(ctx, "user", "alice@example.com")
	fmt.Println(u.ID, string(u.Body))
	// Output:
	// 1 put group g1
	// 1 put user u1
	// u1 {"displayName":"Alice"}
}
