package apply

import (
	"context"
	"fmt"
	"testing"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store/storetest"
)

// benchManifest is a tenant of users users and groups groups, each group
// with ten direct users and, except every tenth, the next group nested in
// it (chains ten deep), plus a role assignment per ten groups.
func benchManifest(users, groups int) *Manifest {
	m := &Manifest{}
	for i := range users {
		m.Users = append(m.Users, directory.User{
			UserPrincipalName: fmt.Sprintf("user%05d@contoso.com", i),
			DisplayName:       fmt.Sprintf("User %d", i),
			Department:        fmt.Sprintf("Department %d", i%17),
		})
	}
	for i := range groups {
		g := Group{Members: &Members{}}
		g.DisplayName = fmt.Sprintf("Group %03d", i)
		for j := range 10 {
			g.Members.Users = append(g.Members.Users, fmt.Sprintf("user%05d@contoso.com", (i*10+j)%users))
		}
		if i%10 != 9 && i+1 < groups {
			g.Members.Groups = []string{fmt.Sprintf("Group %03d", i+1)}
		}
		m.Groups = append(m.Groups, g)
		if i%10 == 0 {
			m.RoleAssignments = append(m.RoleAssignments, RoleAssignment{Group: g.DisplayName, Role: "Reader", Scope: fmt.Sprintf("/apps/app%d", i)})
		}
	}
	return m
}

// BenchmarkApply measures applying 1000 users and 100 groups to an empty
// SQLite store (one transaction), and re-applying them unchanged.
func BenchmarkApply(b *testing.B) {
	ctx := context.Background()
	m := benchManifest(1000, 100)
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			st := storetest.OpenSQLite(b)
			b.StartTimer()
			p, _, err := Apply(ctx, st, m, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if c, _, _ := p.Counts(); c != 1110 {
				b.Fatalf("%d creates", c)
			}
			b.StopTimer()
			st.Close()
			b.StartTimer()
		}
	})
	b.Run("noop", func(b *testing.B) {
		st := storetest.OpenSQLite(b)
		if _, _, err := Apply(ctx, st, m, Options{}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			p, _, err := Apply(ctx, st, m, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if !p.Empty() {
				b.Fatalf("re-apply:\n%s", p)
			}
		}
	})
	b.Run("export", func(b *testing.B) {
		st := storetest.OpenSQLite(b)
		if _, _, err := Apply(ctx, st, m, Options{}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			e, err := Export(ctx, st)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.YAML(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParse measures parsing the YAML of the same tenant.
func BenchmarkParse(b *testing.B) {
	y, err := benchManifest(1000, 100).YAML()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(y)))
	for b.Loop() {
		if _, err := Parse("tenant.yaml", y); err != nil {
			b.Fatal(err)
		}
	}
}
