package rbac

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/strictjson"
)

const (
	winUser  = "a0000000-0000-4000-8000-000000000001"
	winGroup = "b0000000-0000-4000-8000-000000000001"
	winSub   = "/subscriptions/s1"
	winVM    = winSub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
	winRead  = "Microsoft.Compute/virtualMachines/read"
	winWrite = "Microsoft.Compute/virtualMachines/write"
)

var (
	winStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	winEnd   = winStart.Add(8 * time.Hour)
)

func timePtr(t time.Time) *time.Time { return &t }

// windowed is an assignment of role to principal at scope, in force in
// [start, end) (nil: open).
func windowed(id, principal, role, scope string, start, end *time.Time) Assignment {
	return Assignment{ID: id, PrincipalID: principal, RoleDefinitionID: role, Scope: scope, Schedule: schedule.Schedule{StartDateTime: start, EndDateTime: end}}
}

// TestCheckWindow: an assignment with a window grants at its start and
// inside it, not before it nor at or after its end; each path through
// Check (a listed subject, groups given, groups asked of Principals, a
// long span) honours it, and the reason is that no assignment applies.
func TestCheckWindow(t *testing.T) {
	t.Parallel()
	// The user holds the window directly or through its group; fillers
	// make the user's span long (more than longSpan entries).
	build := func(holder string, filler int, opts Options) *Engine {
		t.Helper()
		as := []Assignment{windowed("w", holder, "Contributor", winSub, timePtr(winStart), timePtr(winEnd))}
		for i := range filler {
			as = append(as, Assignment{ID: fmt.Sprintf("f%d", i), PrincipalID: holder, RoleDefinitionID: "Reader",
				Scope: fmt.Sprintf("/subscriptions/other%d", i)})
		}
		e, err := Compile(nil, as, nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	groups := map[string][]string{winUser: {winGroup}}
	paths := []struct {
		name   string
		engine *Engine
		groups []string // Request.Groups
	}{
		{"direct, groups given", build(winUser, 0, Options{}), []string{}},
		{"direct, listed subject", build(winUser, 0, Options{Principals: listed{[]string{winUser}, groups}}), nil},
		{"direct, long span", build(winUser, 2*longSpan, Options{}), []string{}},
		{"group, groups given", build(winGroup, 0, Options{}), []string{winGroup}},
		{"group, asked of Principals", build(winGroup, 0, Options{Principals: membership(groups)}), nil},
		{"group, listed subject", build(winGroup, 0, Options{Principals: listed{[]string{winUser}, groups}}), nil},
		{"group, long span", build(winGroup, 2*longSpan, Options{}), []string{winGroup}},
	}
	times := []struct {
		name  string
		now   time.Time
		allow bool
	}{
		{"before start", winStart.Add(-time.Nanosecond), false},
		{"at start", winStart, true},
		{"inside", winStart.Add(4 * time.Hour), true},
		{"just before end", winEnd.Add(-time.Nanosecond), true},
		{"at end", winEnd, false},
		{"after end", winEnd.Add(time.Hour), false},
		{"in another zone, inside", winStart.Add(time.Hour).In(time.FixedZone("UTC+5", 5*3600)), true},
	}
	for _, p := range paths {
		for _, tt := range times {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				var res Decision
				p.engine.Check(&Request{PrincipalID: winUser, Groups: p.groups, Action: winWrite, Scope: winVM, Now: tt.now}, &res)
				if res.Allowed != tt.allow {
					t.Fatalf("allowed %v (%v), want %v", res.Allowed, res.Reason, tt.allow)
				}
				if !tt.allow && res.Reason != ReasonNoAssignment {
					t.Errorf("reason %v, want %v", res.Reason, ReasonNoAssignment)
				}
				if tt.allow {
					g := res.GrantedBy()
					if len(g) != 1 || g[0].AssignmentID != "w" || g[0].EndDateTime == nil || !g[0].EndDateTime.Equal(winEnd) {
						t.Errorf("granted by %+v, want w ending %s", g, winEnd)
					}
				}
			})
		}
	}
}

// TestCheckWindowZeroNow: a request without a time is decided at the
// current time, so windows still count.
func TestCheckWindowZeroNow(t *testing.T) {
	t.Parallel()
	now := time.Now()
	e, err := Compile(nil, []Assignment{
		windowed("current", winUser, "Reader", winSub, timePtr(now.Add(-time.Hour)), timePtr(now.Add(time.Hour))),
		windowed("ended", winUser, "Contributor", winSub, nil, timePtr(now.Add(-time.Minute))),
		windowed("future", winUser, "Owner", winSub, timePtr(now.Add(time.Hour)), nil),
	}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var res Decision
	for _, tt := range []struct {
		action string
		allow  bool
	}{
		{winRead, true},
		{winWrite, false},
		{"Microsoft.Authorization/roleAssignments/write", false},
	} {
		e.Check(&Request{PrincipalID: winUser, Groups: []string{}, Action: tt.action, Scope: winVM}, &res)
		if res.Allowed != tt.allow {
			t.Errorf("%s: allowed %v (%v), want %v", tt.action, res.Allowed, res.Reason, tt.allow)
		}
	}
}

// TestCheckExpiredBesidePermanent: an expired assignment neither grants
// nor hides a permanent one of the same principal; GrantedBy lists only
// what is in force, and a deny assignment still blocks whatever the
// window.
func TestCheckExpiredBesidePermanent(t *testing.T) {
	t.Parallel()
	after := winEnd.Add(time.Minute)
	e, err := Compile(nil, []Assignment{
		windowed("expired-owner", winUser, "Owner", winSub, timePtr(winStart), timePtr(winEnd)),
		{ID: "reader", PrincipalID: winUser, RoleDefinitionID: "Reader", Scope: winSub},
		windowed("expired-reader", winUser, "Reader", winSub, nil, timePtr(winEnd)),
		windowed("active-contributor", winUser, "Virtual Machine Contributor", winSub, timePtr(winStart), nil),
	}, []DenyAssignment{{ID: "d1", Scope: winSub, Permissions: []Permission{{Actions: []string{"*/delete"}}},
		Principals: []DenyPrincipal{{ID: winUser, Type: "User"}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		action  string
		now     time.Time
		allow   bool
		reason  Reason
		granted []string // with AllGrants
	}{
		{"read after expiry: those in force", winRead, after, true, ReasonGranted, []string{"active-contributor", "reader"}},
		{"read inside: all three", winRead, winStart, true, ReasonGranted, []string{"active-contributor", "expired-owner", "expired-reader", "reader"}},
		{"owner's action after expiry", "Microsoft.Authorization/roleAssignments/write", after, false, ReasonNotInRole, nil},
		{"owner's action inside", "Microsoft.Authorization/roleAssignments/write", winStart, true, ReasonGranted, []string{"expired-owner"}},
		{"write before start", winWrite, winStart.Add(-time.Second), false, ReasonNotInRole, nil},
		{"deny inside the window", "Microsoft.Compute/virtualMachines/delete", winStart, false, ReasonDenyAssignment, nil},
		{"deny after it", "Microsoft.Compute/virtualMachines/delete", after, false, ReasonDenyAssignment, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var res Decision
			e.Check(&Request{PrincipalID: winUser, Groups: []string{}, Action: tt.action, Scope: winVM, Now: tt.now, AllGrants: true}, &res)
			if res.Allowed != tt.allow || res.Reason != tt.reason {
				t.Fatalf("allowed %v (%v), want %v (%v)", res.Allowed, res.Reason, tt.allow, tt.reason)
			}
			var got []string
			for _, g := range res.GrantedBy() {
				got = append(got, g.AssignmentID)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.granted) {
				t.Errorf("granted by %v, want %v", got, tt.granted)
			}
			if tt.reason == ReasonDenyAssignment && (res.DeniedBy == nil || res.DeniedBy.ID != "d1") {
				t.Errorf("denied by %+v, want d1", res.DeniedBy)
			}
		})
	}
}

// TestEffectiveAccessWindow: Permissions and WhoCan list only the
// assignments in force at the time asked, and Permissions says when each
// ends.
func TestEffectiveAccessWindow(t *testing.T) {
	t.Parallel()
	const other = "a0000000-0000-4000-8000-000000000002"
	e, err := Compile(nil, []Assignment{
		windowed("activated", winUser, "Contributor", winSub, timePtr(winStart), timePtr(winEnd)),
		{ID: "reader", PrincipalID: other, RoleDefinitionID: "Reader", Scope: winSub},
		windowed("group-owner", winGroup, "Owner", "/", nil, timePtr(winEnd)),
	}, nil, Options{Principals: membership(map[string][]string{winUser: {winGroup}})})
	if err != nil {
		t.Fatal(err)
	}
	inside, after := winStart.Add(time.Hour), winEnd
	roles := func(now time.Time) (out []string) {
		for _, g := range e.Permissions(winUser, winVM, now) {
			end := "never"
			if g.EndDateTime != nil {
				end = g.EndDateTime.Format(time.RFC3339)
			}
			out = append(out, g.RoleName+" until "+end)
		}
		slices.Sort(out)
		return out
	}
	endText := winEnd.Format(time.RFC3339)
	if got, want := roles(inside), []string{"Contributor until " + endText, "Owner until " + endText}; !slices.Equal(got, want) {
		t.Errorf("Permissions inside = %v, want %v", got, want)
	}
	if got := roles(winStart.Add(-time.Hour)); !slices.Equal(got, []string{"Owner until " + endText}) {
		t.Errorf("Permissions before start = %v", got)
	}
	if got := roles(after); len(got) != 0 {
		t.Errorf("Permissions after end = %v, want none", got)
	}
	for _, tt := range []struct {
		now  time.Time
		want []string
	}{
		{inside, []string{winUser, other, winGroup}},
		{winStart.Add(-time.Hour), []string{other, winGroup}},
		{after, []string{other}},
	} {
		if got := e.WhoCan(winRead, winVM, false, tt.now); !slices.Equal(got, tt.want) {
			t.Errorf("WhoCan at %s = %v, want %v", tt.now, got, tt.want)
		}
	}
}

// TestCheckWindowDoesNotAllocate: comparing windows, with the time given
// or read from the clock, keeps Check allocation-free.
func TestCheckWindowDoesNotAllocate(t *testing.T) {
	now := time.Now()
	e, err := Compile(nil, []Assignment{
		windowed("w", winUser, "Contributor", winSub, timePtr(now.Add(-time.Hour)), timePtr(now.Add(time.Hour))),
	}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var res Decision
	for _, r := range []Request{
		{PrincipalID: winUser, Groups: []string{}, Action: winWrite, Scope: winVM, Now: now},
		{PrincipalID: winUser, Groups: []string{}, Action: winWrite, Scope: winVM},
	} {
		e.Check(&r, &res)
		if !res.Allowed {
			t.Fatalf("%+v: %v", r, res.Reason)
		}
		if n := testing.AllocsPerRun(100, func() { e.Check(&r, &res) }); n != 0 {
			t.Errorf("Now %v: %v allocs", r.Now, n)
		}
	}
}

// TestCompileWindowBounds: windows reaching beyond what nanoseconds since
// 1970 hold (1678 to 2262) still contain the times in that range, and an
// empty window never grants.
func TestCompileWindowBounds(t *testing.T) {
	t.Parallel()
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	early := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	e, err := Compile(nil, []Assignment{
		windowed("long", winUser, "Reader", winSub, timePtr(early), timePtr(far)),
		windowed("empty", winUser, "Contributor", winSub, timePtr(winEnd), timePtr(winStart)), // Validate refuses it; Compile must not grant
	}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var res Decision
	for _, now := range []time.Time{winStart, winEnd, time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)} {
		e.Check(&Request{PrincipalID: winUser, Groups: []string{}, Action: winRead, Scope: winVM, Now: now}, &res)
		if !res.Allowed {
			t.Errorf("read at %s: %v", now, res.Reason)
		}
		e.Check(&Request{PrincipalID: winUser, Groups: []string{}, Action: winWrite, Scope: winVM, Now: now}, &res)
		if res.Allowed {
			t.Errorf("write at %s allowed by an empty window", now)
		}
	}
}

func TestAssignmentScheduleValidate(t *testing.T) {
	t.Parallel()
	plus2 := time.FixedZone("UTC+2", 2*3600)
	base := func() Assignment {
		return Assignment{PrincipalID: winUser, RoleDefinitionID: "Reader", Scope: "/"}
	}
	tests := []struct {
		name   string
		edit   func(a *Assignment)
		path   string // "" when valid
		errHas string
	}{
		{"no window", func(a *Assignment) {}, "", ""},
		{"start only", func(a *Assignment) { a.StartDateTime = timePtr(winStart) }, "", ""},
		{"end only", func(a *Assignment) { a.EndDateTime = timePtr(winEnd) }, "", ""},
		{"window", func(a *Assignment) { a.StartDateTime, a.EndDateTime = timePtr(winStart), timePtr(winEnd) }, "", ""},
		{"window in another zone, normalised", func(a *Assignment) {
			a.StartDateTime, a.EndDateTime = timePtr(winStart.In(plus2)), timePtr(winEnd.In(plus2))
		}, "", ""},
		{"end equals start", func(a *Assignment) { a.StartDateTime, a.EndDateTime = timePtr(winStart), timePtr(winStart) }, "endDateTime", "after startDateTime"},
		{"end before start", func(a *Assignment) { a.StartDateTime, a.EndDateTime = timePtr(winEnd), timePtr(winStart) }, "endDateTime", "after startDateTime"},
		{"zero start", func(a *Assignment) { a.StartDateTime = &time.Time{} }, "startDateTime", "zero time"},
		{"activated", func(a *Assignment) {
			a.AssignmentType, a.EndDateTime, a.LinkedEligibilityScheduleID = schedule.Activated, timePtr(winEnd), "c0000000-0000-4000-8000-000000000001"
		}, "", ""},
		{"activated without end", func(a *Assignment) { a.AssignmentType = schedule.Activated }, "endDateTime", "Activated"},
		{"assigned", func(a *Assignment) { a.AssignmentType = schedule.Assigned }, "", ""},
		{"unknown type", func(a *Assignment) { a.AssignmentType = "Eligible" }, "assignmentType", "Assigned or Activated"},
		{"link with a control character", func(a *Assignment) {
			a.AssignmentType, a.EndDateTime, a.LinkedEligibilityScheduleID = schedule.Activated, timePtr(winEnd), "x\ny"
		}, "linkedRoleEligibilityScheduleId", "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := base()
			tt.edit(&a)
			a.Normalize()
			err := a.Validate()
			if tt.path == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				for _, p := range []*time.Time{a.StartDateTime, a.EndDateTime} {
					if p != nil && p.Location() != time.UTC {
						t.Errorf("%s not normalised to UTC", p)
					}
				}
				return
			}
			var fe *strictjson.FieldError
			if !errors.As(err, &fe) || fe.Path != tt.path || !strings.Contains(fe.Message, tt.errHas) {
				t.Fatalf("error %v, want at %s containing %q", err, tt.path, tt.errHas)
			}
		})
	}
	// Without Normalize, a time outside UTC is refused rather than stored.
	a := base()
	a.EndDateTime = timePtr(winEnd.In(plus2))
	var fe *strictjson.FieldError
	if err := a.Validate(); !errors.As(err, &fe) || fe.Path != "endDateTime" {
		t.Errorf("non-UTC end: %v", err)
	}
}

// TestAssignmentScheduleJSON: the fields read and write under ARM's names,
// absent when unset; a malformed time names its field.
func TestAssignmentScheduleJSON(t *testing.T) {
	t.Parallel()
	in := `{"principalId":"` + winUser + `","roleDefinitionId":"Reader","scope":"/",` +
		`"startDateTime":"2026-03-01T10:00:00+01:00","endDateTime":"2026-03-01T17:00:00Z",` +
		`"assignmentType":"Activated","linkedRoleEligibilityScheduleId":"e1"}`
	var a Assignment
	if err := strictjson.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"startDateTime":"2026-03-01T09:00:00Z"`, `"endDateTime":"2026-03-01T17:00:00Z"`,
		`"assignmentType":"Activated"`, `"linkedRoleEligibilityScheduleId":"e1"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s lacks %s", out, want)
		}
	}
	plain, _ := json.Marshal(&Assignment{PrincipalID: winUser, RoleDefinitionID: "Reader", Scope: "/"})
	for _, absent := range []string{"startDateTime", "endDateTime", "assignmentType", "linkedRoleEligibilityScheduleId"} {
		if strings.Contains(string(plain), absent) {
			t.Errorf("%s shows %s unset", plain, absent)
		}
	}
	err = strictjson.Unmarshal([]byte(`{"principalId":"`+winUser+`","endDateTime":"tomorrow"}`), &a)
	var fe *strictjson.FieldError
	if !errors.As(err, &fe) || fe.Path != "endDateTime" {
		t.Errorf("malformed time: %v, want an error at endDateTime", err)
	}
}

// TestParseScheduleInstances: an ARM list of roleAssignmentScheduleInstances
// (the active assignments of Privileged Identity Management) reads with
// its windows, which then count.
func TestParseScheduleInstances(t *testing.T) {
	t.Parallel()
	doc := `{"value": [{"id": "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignmentScheduleInstances/c0000000-0000-4000-8000-000000000001",
	  "name": "c0000000-0000-4000-8000-000000000001", "type": "Microsoft.Authorization/roleAssignmentScheduleInstances",
	  "properties": {"scope": "/subscriptions/s1", "principalId": "` + winUser + `", "principalType": "User",
	    "roleDefinitionId": "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c",
	    "assignmentType": "Activated", "memberType": "Direct", "status": "Provisioned",
	    "startDateTime": "2026-03-01T09:00:00.533Z", "endDateTime": "2026-03-01T17:00:00.533Z",
	    "linkedRoleEligibilityScheduleId": "/subscriptions/s1/providers/Microsoft.Authorization/roleEligibilitySchedules/e1"}}]}`
	as, err := ParseAssignments([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].AssignmentType != schedule.Activated || as[0].StartDateTime == nil || as[0].EndDateTime == nil ||
		!strings.HasSuffix(as[0].LinkedEligibilityScheduleID, "/e1") {
		t.Fatalf("parsed %+v", as)
	}
	e, err := Compile(nil, as, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var res Decision
	for _, tt := range []struct {
		at    time.Time
		allow bool
	}{{winStart.Add(time.Hour), true}, {winEnd.Add(time.Second), false}} {
		e.Check(&Request{PrincipalID: winUser, Groups: []string{}, Action: winWrite, Scope: winVM, Now: tt.at}, &res)
		if res.Allowed != tt.allow {
			t.Errorf("at %s: allowed %v, want %v", tt.at, res.Allowed, tt.allow)
		}
	}
}

// TestCheckWindowFar: past the window indexes a compact entry holds, Check
// reads the window through the assignment's record, with the same answer.
func TestCheckWindowFar(t *testing.T) {
	t.Parallel()
	const n = winFar + 10
	as := make([]Assignment, 0, n+1)
	for i := range n {
		as = append(as, windowed(fmt.Sprintf("f%d", i), fmt.Sprintf("c0000000-0000-4000-8000-%012x", i), "Reader", winSub, timePtr(winStart), timePtr(winEnd)))
	}
	as = append(as, windowed("last", winUser, "Contributor", winSub, timePtr(winStart), timePtr(winEnd)))
	e, err := Compile(nil, as, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var res Decision
	for _, tt := range []struct {
		principal string
		action    string
		at        time.Time
		allow     bool
	}{
		{winUser, winWrite, winStart, true},
		{winUser, winWrite, winEnd, false},
		{"c0000000-0000-4000-8000-000000000001", winRead, winStart, true},
		{"c0000000-0000-4000-8000-000000000001", winRead, winEnd, false},
	} {
		e.Check(&Request{PrincipalID: tt.principal, Groups: []string{}, Action: tt.action, Scope: winVM, Now: tt.at}, &res)
		if res.Allowed != tt.allow {
			t.Errorf("%s at %s: allowed %v, want %v", tt.principal, tt.at, res.Allowed, tt.allow)
		}
	}
	// The entry of the last assignment does hold winFar.
	p, _, _ := e.lookupPrincipal(winUser, nil)
	if es := e.byPrincipal.of(p); len(es) != 1 || es[0].win != winFar {
		t.Fatalf("entries %+v, want one with winFar", es)
	}
}
