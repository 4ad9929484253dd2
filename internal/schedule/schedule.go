// Package schedule is the time window of a role assignment — Verity's
// extension modelled on ARM's roleAssignmentScheduleInstances and Graph's
// unifiedRoleAssignmentScheduleInstance: a role activated through
// Privileged Identity Management is an assignment that ends on time.
// Verity's RBAC assignments and directory role assignments embed it, so
// both keep, check and compare their windows the same way. It imports
// only strictjson.
package schedule

import (
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/verityhq/verity/internal/strictjson"
)

// Assignment types.
const (
	Assigned  = "Assigned"
	Activated = "Activated"
)

// Schedule bounds when an assignment is in force and says how it came to
// be. The zero Schedule is a standing assignment.
type Schedule struct {
	// StartDateTime and EndDateTime bound when the assignment is in force,
	// from StartDateTime (inclusive) until EndDateTime (exclusive), RFC
	// 3339, stored in UTC; nil means no bound on that side. Decisions
	// compare them with their own time, so an assignment stops granting at
	// its end without a rebuild.
	StartDateTime *time.Time `json:"startDateTime,omitempty"`
	EndDateTime   *time.Time `json:"endDateTime,omitempty"`
	// AssignmentType says how the assignment came to be: "Assigned" by an
	// administrator, or "Activated" by its principal from an eligibility
	// (an activation always ends). It does not change what it grants.
	AssignmentType string `json:"assignmentType,omitempty"`
	// LinkedEligibilityScheduleID names the eligibility an activated
	// assignment came from; informational.
	LinkedEligibilityScheduleID string `json:"linkedRoleEligibilityScheduleId,omitempty"`
}

// InForce reports whether now lies in the window: at or after
// StartDateTime and before EndDateTime. No window: always in force.
func (s *Schedule) InForce(now time.Time) bool {
	return (s.StartDateTime == nil || !now.Before(*s.StartDateTime)) &&
		(s.EndDateTime == nil || now.Before(*s.EndDateTime))
}

// Permanent reports whether the assignment is in force at now and stays
// so: no end, and any start already reached.
func (s *Schedule) Permanent(now time.Time) bool {
	return s.EndDateTime == nil && s.InForce(now)
}

// Normalize puts both bounds in UTC (as new values: the caller's are left
// alone).
func (s *Schedule) Normalize() {
	s.StartDateTime, s.EndDateTime = utc(s.StartDateTime), utc(s.EndDateTime)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// Validate reports the first invalid field with its JSON path: each
// bound absent or a UTC date-time, the end after the start, a known
// type, an end on every activation.
func (s *Schedule) Validate() error {
	for _, f := range [...]struct {
		path string
		t    *time.Time
	}{{"startDateTime", s.StartDateTime}, {"endDateTime", s.EndDateTime}} {
		switch {
		case f.t == nil:
		case f.t.IsZero():
			return strictjson.Errorf(f.path, "must be a date-time, not the zero time; leave it out for no bound")
		case f.t.Location() != time.UTC:
			return strictjson.Errorf(f.path, "must be in UTC (Normalize converts it)")
		}
	}
	if s.StartDateTime != nil && s.EndDateTime != nil && !s.EndDateTime.After(*s.StartDateTime) {
		return strictjson.Errorf("endDateTime", "must be after startDateTime (%s)", s.StartDateTime.Format(time.RFC3339Nano))
	}
	switch s.AssignmentType {
	case "", Assigned:
	case Activated:
		if s.EndDateTime == nil {
			return strictjson.Errorf("endDateTime", "required on an Activated assignment: an activation ends")
		}
	default:
		return strictjson.Errorf("assignmentType", "must be Assigned or Activated")
	}
	if len(s.LinkedEligibilityScheduleID) > 1024 || strings.ContainsFunc(s.LinkedEligibilityScheduleID, unicode.IsControl) {
		return strictjson.Errorf("linkedRoleEligibilityScheduleId", "must be at most 1024 characters, without control characters")
	}
	return nil
}

// Window is a time range [NotBefore, NotAfter) in unix nanoseconds, the
// compiled form decisions compare with; an open side is at the int64
// limit.
type Window struct{ NotBefore, NotAfter int64 }

// Always is the window of a standing assignment.
var Always = Window{math.MinInt64, math.MaxInt64}

// Contains reports whether now (unix nanoseconds) lies in w.
func (w Window) Contains(now int64) bool { return w.NotBefore <= now && now < w.NotAfter }

// Window is the schedule's window, and whether it has one.
func (s *Schedule) Window() (Window, bool) {
	w := Always
	if s.StartDateTime != nil {
		w.NotBefore = UnixNanos(*s.StartDateTime)
	}
	if s.EndDateTime != nil {
		w.NotAfter = UnixNanos(*s.EndDateTime)
	}
	return w, s.StartDateTime != nil || s.EndDateTime != nil
}

// UnixNanos is t in unix nanoseconds, clamped to the int64 range (years
// 1678 to 2262), which keeps the order of times.
func UnixNanos(t time.Time) int64 {
	const lim = math.MaxInt64 / int64(time.Second)
	switch s := t.Unix(); {
	case s <= -lim:
		return math.MinInt64
	case s >= lim:
		return math.MaxInt64
	}
	return t.UnixNano()
}
