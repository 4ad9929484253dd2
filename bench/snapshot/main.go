// Command snapshot measures what it costs a node to build its in-memory
// snapshot of a large directory: wall time, CPU time and peak resident
// memory of a process that opens the store and builds, nothing else.
//
//	go run ./bench/snapshot -populate -dsn /tmp/big.db          # write the directory once
//	go run ./bench/snapshot -dsn /tmp/big.db                     # measure a build (fresh process)
//
// The directory: 100k users, 10k groups nested 5 levels deep (each group
// below the top in one or two groups of the level above, each user in 3-5
// groups), 1k applications each with a service principal.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

func main() {
	dsn := flag.String("dsn", "", "store DSN (SQLite path or postgres:// URL)")
	populate := flag.Bool("populate", false, "write the benchmark directory instead of measuring")
	users := flag.Int("users", 100_000, "users")
	groups := flag.Int("groups", 10_000, "groups (in 5 levels)")
	apps := flag.Int("apps", 1_000, "applications (each with a service principal)")
	rounds := flag.Int("rounds", 3, "builds to time")
	flag.Parse()
	if *dsn == "" {
		fmt.Fprintln(os.Stderr, "snapshot: -dsn is required")
		os.Exit(2)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DSN: *dsn}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "snapshot:", err)
		os.Exit(1)
	}
	defer st.Close()
	if *populate {
		if err := write(ctx, st, *users, *groups, *apps); err != nil {
			fmt.Fprintln(os.Stderr, "snapshot:", err)
			os.Exit(1)
		}
		return
	}
	for i := range *rounds {
		runtime.GC()
		var before syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		snap, err := decision.Build(ctx, st)
		if err != nil {
			fmt.Fprintln(os.Stderr, "snapshot:", err)
			os.Exit(1)
		}
		wall := time.Since(start)
		var after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		s := snap.Directory().Stats()
		fmt.Printf("build %d: %d users, %d groups, %d service principals, %d transitive memberships: wall %v, cpu %v, heap in use %d MiB, peak RSS %d MiB\n",
			i+1, s.Users, s.Groups, s.ServicePrincipals, s.TransitiveMemberships, wall.Round(time.Millisecond), cpu.Round(time.Millisecond),
			ms.HeapInuse>>20, after.Maxrss>>10)
		runtime.KeepAlive(snap)
	}
}

// write stores the benchmark directory in batches of 5000 objects.
func write(ctx context.Context, st store.Store, nUsers, nGroups, nApps int) error {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(kind, n int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", kind, n) }
	const levels = 5
	perLevel := nGroups / levels
	members := make([][]string, nGroups)
	for l := 1; l < levels; l++ {
		for i := range perLevel {
			g := l*perLevel + i
			for range 1 + rng.IntN(2) {
				parent := (l-1)*perLevel + rng.IntN(perLevel)
				members[parent] = append(members[parent], id(2, g))
			}
		}
	}
	var objs []store.Object
	add := func(d interface {
		ObjectOf(directory.Resource) (store.Object, error)
	}, r directory.Resource) error {
		r.Normalize()
		o, err := d.ObjectOf(r)
		if err != nil {
			return err
		}
		objs = append(objs, o)
		return nil
	}
	for u := range nUsers {
		if err := add(directory.Users, &directory.User{ID: id(1, u), UserPrincipalName: fmt.Sprintf("user%d@contoso.com", u),
			DisplayName: fmt.Sprintf("User %d", u), Department: "Engineering", JobTitle: "Engineer"}); err != nil {
			return err
		}
		for range 3 + rng.IntN(3) {
			l := levels - 1 - rng.IntN(2) // mostly the deepest levels
			g := l*perLevel + rng.IntN(perLevel)
			members[g] = append(members[g], id(1, u))
		}
	}
	for g := range nGroups {
		seen := map[string]bool{}
		var ms []string
		for _, m := range members[g] {
			if !seen[m] {
				seen[m] = true
				ms = append(ms, m)
			}
		}
		if err := add(directory.Groups, &directory.Group{GraphGroup: directory.GraphGroup{ID: id(2, g), DisplayName: fmt.Sprintf("Group %d", g)}, Members: ms}); err != nil {
			return err
		}
	}
	for a := range nApps {
		appID := id(4, a)
		if err := add(directory.Applications, &directory.Application{ID: id(3, a), AppID: appID, DisplayName: fmt.Sprintf("App %d", a)}); err != nil {
			return err
		}
		if err := add(directory.ServicePrincipals, &directory.ServicePrincipal{ID: id(5, a), AppID: appID, DisplayName: fmt.Sprintf("App %d", a)}); err != nil {
			return err
		}
	}
	for start := 0; start < len(objs); start += 5000 {
		batch := objs[start:min(start+5000, len(objs))]
		if _, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
			for _, o := range batch {
				if err := tx.Put(ctx, o); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(map[string]int{"objects": len(objs)})
	fmt.Println(string(b))
	return nil
}
