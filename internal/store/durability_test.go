package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/store/storetest"
)

// envDurabilityDSN tells the test binary, run as a child, to write until
// it is killed.
const envDurabilityDSN = "VERITY_STORE_DURABILITY_DSN"

// TestDurabilityWriter is the child of TestDurability: it writes one object
// per Update and prints "ack ID REVISION" after each returns.
func TestDurabilityWriter(t *testing.T) {
	dsn := os.Getenv(envDurabilityDSN)
	if dsn == "" {
		t.Skip("runs only as the child of TestDurability")
	}
	ctx := context.Background()
	s, err := store.Open(ctx, storetest.Config(dsn), nil)
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		id := fmt.Sprint("obj-", i)
		rev, err := s.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			return tx.Put(ctx, store.Object{Kind: "user", ID: id, Body: []byte(fmt.Sprintf(`{"i":%d}`, i))})
		})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("ack %s %d\n", id, rev)
	}
}

// TestDurability SIGKILLs a process in the middle of writing and checks
// that every write it acknowledged is in the database.
func TestDurability(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			dsn := e.fresh(t)
			cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityWriter$", "-test.count=1")
			cmd.Env = append(os.Environ(), envDurabilityDSN+"="+dsn)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[string]int64{}
			lines := bufio.NewScanner(out)
			deadline := time.Now().Add(20 * time.Second)
			for len(acked) < 200 && lines.Scan() {
				f := strings.Fields(lines.Text())
				if len(f) == 3 && f[0] == "ack" {
					rev, _ := strconv.ParseInt(f[2], 10, 64)
					acked[f[1]] = rev
				} else if len(f) > 0 && f[0] == "error" {
					t.Fatalf("writer: %s", lines.Text())
				}
				if time.Now().After(deadline) {
					break
				}
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup, no flush
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if len(acked) < 50 {
				t.Fatalf("writer acknowledged only %d writes", len(acked))
			}

			s := storetest.OpenDSN(t, dsn)
			ctx := ctxFor(t)
			for id, rev := range acked {
				o, err := s.Get(ctx, "user", id)
				if err != nil {
					t.Fatalf("acknowledged write %s (revision %d) lost: %v", id, rev, err)
				}
				if o.Revision != rev {
					t.Fatalf("%s has revision %d, acknowledged %d", id, o.Revision, rev)
				}
			}
		})
	}
}
