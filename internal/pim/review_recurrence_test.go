package pim

import (
	"testing"
	"time"
)

// TestReviewOccurrences: each recurrence starts where Entra's would — a
// month's day past the end of a shorter month falls on its last day, and
// the next month goes back to the day asked for — and ends with its count
// or its end date (the whole last day when given as a date).
func TestReviewOccurrences(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time {
		v, err := time.Parse(time.DateOnly, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name string
		r    Recurrence
		want []string
	}{
		{"one time", Recurrence{Type: RecurOnetime, StartDate: "2026-12-01"}, []string{"2026-12-01"}},
		{"weekly, 3 times", Recurrence{Type: RecurWeekly, StartDate: "2026-12-01", NumberOfOccurrences: 3}, []string{"2026-12-01", "2026-12-08", "2026-12-15"}},
		{"monthly from the 31st", Recurrence{Type: RecurMonthly, StartDate: "2027-01-31", NumberOfOccurrences: 4},
			[]string{"2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"}},
		{"quarterly to an end date, inclusive", Recurrence{Type: RecurQuarterly, StartDate: "2026-11-30", EndDate: "2027-08-30"},
			[]string{"2026-11-30", "2027-02-28", "2027-05-30", "2027-08-30"}},
		{"semi-annual to an end date-time", Recurrence{Type: RecurSemiAnnual, StartDate: "2026-01-01T09:00:00Z", EndDate: "2027-01-01T08:59:59Z"},
			[]string{"2026-01-01", "2026-07-01"}},
		{"annual from a leap day", Recurrence{Type: RecurAnnual, StartDate: "2028-02-29", NumberOfOccurrences: 5},
			[]string{"2028-02-29", "2029-02-28", "2030-02-28", "2031-02-28", "2032-02-29"}},
	} {
		var got []string
		for k := 0; ; k++ {
			at, ok := c.r.occurrence(k)
			if !ok || k > 20 {
				break
			}
			got = append(got, at.Format(time.DateOnly))
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: %v; want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: %v; want %v", c.name, got, c.want)
				break
			}
		}
	}
	// Without an end, a recurrence goes on; the next occurrence skips
	// those whose window has passed.
	d := ReviewDefinition{Settings: ReviewSettings{Recurrence: Recurrence{Type: RecurWeekly, StartDate: "2026-01-05"}, InstanceDurationInDays: 3}}
	k, start, end, ok := d.nextOccurrence(-1, day("2026-03-04"))
	if !ok || k != 8 || !start.Equal(day("2026-03-02")) || !end.Equal(day("2026-03-05")) {
		t.Errorf("next occurrence: %d %v %v %v", k, start, end, ok)
	}
	if k, start, _, ok = d.nextOccurrence(-1, day("2026-03-05")); !ok || k != 9 || !start.Equal(day("2026-03-09")) {
		t.Errorf("next occurrence after a window: %d %v %v", k, start, ok)
	}
}
