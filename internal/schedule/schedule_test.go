package schedule

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	end := at.Add(time.Hour)
	s := Schedule{StartDateTime: &at, EndDateTime: &end, AssignmentType: Activated}
	if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), "startDateTime") {
		t.Fatalf("a bound not in UTC: %v", err)
	}
	s.Normalize()
	if err := s.Validate(); err != nil || s.StartDateTime.Location() != time.UTC || at.Location() == time.UTC {
		t.Fatalf("normalised: %v (the caller's time must stay as it was)", err)
	}
	if !s.InForce(at) || !s.InForce(end.Add(-time.Nanosecond)) || s.InForce(end) || s.InForce(at.Add(-time.Nanosecond)) || s.Permanent(at) {
		t.Fatal("the window is [start, end)")
	}
	w, ok := s.Window()
	if !ok || !w.Contains(UnixNanos(at)) || w.Contains(UnixNanos(end)) {
		t.Fatalf("window %+v", w)
	}
	for _, c := range []struct {
		s    Schedule
		want string
	}{
		{Schedule{AssignmentType: Activated}, "endDateTime: required"},
		{Schedule{StartDateTime: s.EndDateTime, EndDateTime: s.StartDateTime}, "endDateTime: must be after"},
		{Schedule{AssignmentType: "Borrowed"}, "assignmentType"},
		{Schedule{StartDateTime: new(time.Time)}, "startDateTime: must be a date-time"},
		{Schedule{LinkedEligibilityScheduleID: "a\nb"}, "linkedRoleEligibilityScheduleId"},
	} {
		if err := c.s.Validate(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
	var none Schedule
	if w, ok := none.Window(); ok || w != Always || !none.Permanent(at) || none.Validate() != nil {
		t.Fatal("the zero schedule is a standing assignment")
	}
	if UnixNanos(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)) != math.MaxInt64 || UnixNanos(time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)) != math.MinInt64 {
		t.Fatal("times beyond int64 nanoseconds are not clamped")
	}
}
