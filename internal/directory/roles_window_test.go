package directory

import (
	"slices"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/store"
)

// TestDirectoryRolesAt: a time-bound role assignment counts from its start
// until just before its end, directly or through a role-assignable group;
// overlapping windows join; a permanent assignment of the same role keeps
// it; the methods without a time answer for now. Not parallel: it counts
// allocations.
func TestDirectoryRolesAt(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := start.Add(d); return &t }
	now := time.Now()
	fromNow := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	ga, sr, dr := GlobalAdministratorRoleID, securityReaderRoleID, directoryReadersRoleID
	ra := func(n int, principal, role string, from, until *time.Time) Resource {
		return &RoleAssignment{ID: id("r", n), PrincipalID: principal, RoleDefinitionID: role, Schedule: schedule.Schedule{StartDateTime: from, EndDateTime: until}}
	}
	resources := []Resource{
		&User{ID: id("u", 1), UserPrincipalName: "perm@contoso.com", DisplayName: "perm"},
		&User{ID: id("u", 2), UserPrincipalName: "pim@contoso.com", DisplayName: "pim"},
		&User{ID: id("u", 3), UserPrincipalName: "member@contoso.com", DisplayName: "member"},
		&User{ID: id("u", 4), UserPrincipalName: "overlap@contoso.com", DisplayName: "overlap"},
		&User{ID: id("u", 5), UserPrincipalName: "both@contoso.com", DisplayName: "both"},
		&User{ID: id("u", 6), UserPrincipalName: "current@contoso.com", DisplayName: "current"},
		&Group{GraphGroup: GraphGroup{ID: id("g", 1), DisplayName: "PIM admins", IsAssignableToRole: ptr(true)}, Members: []string{id("u", 3)}},
		ra(1, id("u", 1), ga, nil, nil),
		ra(2, id("u", 2), ga, at(0), at(8*time.Hour)),
		ra(3, id("g", 1), sr, at(time.Hour), at(2*time.Hour)),
		ra(4, id("u", 3), dr, nil, nil),
		ra(5, id("u", 4), sr, at(0), at(2*time.Hour)),
		ra(6, id("u", 4), sr, at(time.Hour), at(3*time.Hour)),
		ra(7, id("u", 4), ga, nil, at(time.Hour)), // end only
		ra(8, id("u", 5), ga, nil, nil),
		ra(9, id("u", 5), ga, at(0), at(time.Hour)),
		ra(10, id("u", 6), ga, fromNow(-time.Hour), fromNow(time.Hour)),
		ra(11, id("u", 6), sr, nil, fromNow(-time.Minute)),
	}
	objs := make([]store.Object, len(resources))
	for i, r := range resources {
		objs[i] = object(t, r)
	}
	s := buildFromStore(t, objs)

	tests := []struct {
		name      string
		principal string
		at        time.Duration // after start
		want      []string
	}{
		{"permanent, any time", id("u", 1), -time.Hour, []string{ga}},
		{"pim before start", id("u", 2), -time.Nanosecond, nil},
		{"pim at start", id("u", 2), 0, []string{ga}},
		{"pim inside", id("u", 2), 7 * time.Hour, []string{ga}},
		{"pim at end", id("u", 2), 8 * time.Hour, nil},
		{"group member before", id("u", 3), 0, []string{dr}},
		{"group member inside", id("u", 3), time.Hour, []string{dr, sr}},
		{"group member at end", id("u", 3), 2 * time.Hour, []string{dr}},
		{"group itself inside", id("g", 1), 90 * time.Minute, []string{sr}},
		{"group itself after", id("g", 1), 3 * time.Hour, nil},
		{"overlap, end-only still in force", id("u", 4), 0, []string{ga, sr}},
		{"overlap, first ends at second's start", id("u", 4), time.Hour, []string{sr}},
		{"overlap, second alone", id("u", 4), 150 * time.Minute, []string{sr}},
		{"overlap, both ended", id("u", 4), 3 * time.Hour, nil},
		{"overlap, before any start", id("u", 4), -time.Hour, []string{ga}},
		{"permanent beside time-bound", id("u", 5), 2 * time.Hour, []string{ga}},
		{"unknown principal", guidA, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := start.Add(tt.at)
			tt.want = slices.Sorted(slices.Values(tt.want))
			if got := s.DirectoryRolesAt(tt.principal, now); !slices.Equal(got, tt.want) {
				t.Errorf("DirectoryRolesAt = %v, want %v", got, tt.want)
			}
			if _, got, _ := s.PrincipalAt(tt.principal, now); !slices.Equal(got, tt.want) {
				t.Errorf("PrincipalAt roles = %v, want %v", got, tt.want)
			}
			for _, r := range []string{ga, sr, dr} {
				if got, want := s.HasDirectoryRoleAt(tt.principal, r, now), slices.Contains(tt.want, r); got != want {
					t.Errorf("HasDirectoryRoleAt(%s) = %v, want %v", r, got, want)
				}
			}
		})
	}

	// InForce agrees with the window's bounds.
	pim := &RoleAssignment{Schedule: schedule.Schedule{StartDateTime: at(0), EndDateTime: at(time.Hour)}}
	for d, want := range map[time.Duration]bool{-time.Nanosecond: false, 0: true, time.Hour - 1: true, time.Hour: false} {
		if got := pim.InForce(start.Add(d)); got != want {
			t.Errorf("InForce(start%+v) = %v, want %v", d, got, want)
		}
	}
	if !(&RoleAssignment{}).InForce(start) {
		t.Error("an assignment without a window is not in force")
	}

	// Without a time (or with the zero time): now.
	for _, roles := range [][]string{s.DirectoryRoles(id("u", 6)), s.DirectoryRolesAt(id("u", 6), time.Time{})} {
		if !slices.Equal(roles, []string{ga}) {
			t.Errorf("roles now = %v, want only the current window's %v", roles, ga)
		}
	}
	if !s.HasDirectoryRole(id("u", 6), ga) || s.HasDirectoryRole(id("u", 6), sr) {
		t.Error("HasDirectoryRole does not answer for now")
	}
	if _, roles, _ := s.Principal(id("u", 6)); !slices.Equal(roles, []string{ga}) {
		t.Errorf("Principal roles = %v", roles)
	}

	// Neither form allocates, with or without time-bound roles.
	var sink int
	u1, u3, u4, u6 := id("u", 1), id("u", 3), id("u", 4), id("u", 6)
	if n := testing.AllocsPerRun(100, func() {
		sink += len(s.DirectoryRolesAt(u4, start.Add(time.Hour))) + len(s.DirectoryRolesAt(u1, start))
		sink += len(s.DirectoryRoles(u6))
		if s.HasDirectoryRoleAt(u3, sr, start.Add(time.Hour)) {
			sink++
		}
	}); n != 0 {
		t.Errorf("roles at a time allocate %.1f times per run", n)
	}
	if sink == 0 {
		t.Error("lookups found nothing")
	}
}
