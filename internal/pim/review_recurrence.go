package pim

import (
	"fmt"
	"time"
)

// When a review's instances start and end: occurrence k of the
// recurrence starts instance k, which lasts instanceDurationInDays.

// validate checks the recurrence's type, dates and count.
func (r *Recurrence) validate() error {
	switch r.Type {
	case RecurOnetime, RecurWeekly, RecurMonthly, RecurQuarterly, RecurSemiAnnual, RecurAnnual:
	default:
		return reviewInvalid("settings.recurrence.type", "must be onetime, weekly, monthly, quarterly, semiAnnual or annual")
	}
	start, _, err := parseReviewDate(r.StartDate)
	if err != nil {
		return reviewInvalid("settings.recurrence.startDate", "%s", err.Error())
	}
	if start.Year() < 2000 || start.Year() > 2999 {
		return reviewInvalid("settings.recurrence.startDate", "must be a date between the years 2000 and 2999")
	}
	switch {
	case r.NumberOfOccurrences < 0 || r.NumberOfOccurrences > maxOccurrences:
		return reviewInvalid("settings.recurrence.numberOfOccurrences", "must be between 1 and %d", maxOccurrences)
	case r.EndDate != "" && r.NumberOfOccurrences > 0:
		return reviewInvalid("settings.recurrence.endDate", "give an end date or a number of occurrences, not both")
	case r.Type == RecurOnetime && (r.EndDate != "" || r.NumberOfOccurrences > 1):
		return reviewInvalid("settings.recurrence.type", "a one-time review has neither an end date nor more occurrences; its length is instanceDurationInDays")
	}
	if r.EndDate != "" {
		end, _, err := parseReviewDate(r.EndDate)
		if err != nil {
			return reviewInvalid("settings.recurrence.endDate", "%s", err.Error())
		}
		if end.Before(start) {
			return reviewInvalid("settings.recurrence.endDate", "before the start date")
		}
	}
	return nil
}

// parseReviewDate reads "2026-12-01" (midnight UTC; dateOnly) or an RFC
// 3339 date-time.
func parseReviewDate(s string) (t time.Time, dateOnly bool, err error) {
	if s == "" {
		return t, false, fmt.Errorf("required")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	t, err = time.Parse(time.RFC3339, s)
	if err != nil {
		return t, false, fmt.Errorf(`%q is neither a date such as "2026-12-01" nor an RFC 3339 date-time`, s)
	}
	return t.UTC(), false, nil
}

// months is a recurrence's period in months (0 for weekly and one-time).
func (r *Recurrence) months() int {
	switch r.Type {
	case RecurMonthly:
		return 1
	case RecurQuarterly:
		return 3
	case RecurSemiAnnual:
		return 6
	case RecurAnnual:
		return 12
	}
	return 0
}

// maxDurationDays is the longest an instance may last: no longer than the
// shortest period, so that instances never overlap.
func (r *Recurrence) maxDurationDays() int {
	switch r.Type {
	case RecurWeekly:
		return 7
	case RecurMonthly:
		return 28
	case RecurQuarterly:
		return 89 // February to April
	case RecurSemiAnnual:
		return 181
	case RecurAnnual:
		return 365
	}
	return maxOnetimeDays
}

// occurrence is the start of occurrence k and whether the recurrence has
// one: a month's day past the end of a shorter month falls on its last
// day (a review every month from January 31 runs on February 28).
func (r *Recurrence) occurrence(k int) (time.Time, bool) {
	start, _, err := parseReviewDate(r.StartDate)
	if err != nil || k < 0 || k > maxOccurrenceIndex {
		return time.Time{}, false
	}
	var at time.Time
	switch m := r.months(); {
	case r.Type == RecurOnetime:
		if k > 0 {
			return time.Time{}, false
		}
		at = start
	case m == 0:
		at = start.AddDate(0, 0, 7*k)
	default:
		at = addMonths(start, m*k)
	}
	if r.NumberOfOccurrences > 0 && k >= r.NumberOfOccurrences {
		return time.Time{}, false
	}
	if r.EndDate != "" {
		end, dateOnly, err := parseReviewDate(r.EndDate)
		if err != nil {
			return time.Time{}, false
		}
		if dateOnly {
			end = end.Add(24 * time.Hour) // the whole last day
		} else {
			end = end.Add(time.Nanosecond)
		}
		if !at.Before(end) {
			return time.Time{}, false
		}
	}
	return at, true
}

// addMonths adds n months to t, keeping the day unless the month is
// shorter.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(n), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(d, last)-1)
}

// nextOccurrence is the first occurrence after index after whose window
// has not yet ended at now: occurrences that ended while no node ran are
// skipped, not started late.
func (d *ReviewDefinition) nextOccurrence(after int, now time.Time) (k int, start, end time.Time, ok bool) {
	length := time.Duration(d.Settings.InstanceDurationInDays) * 24 * time.Hour
	for k = after + 1; k <= maxOccurrenceIndex; k++ {
		start, ok = d.Settings.Recurrence.occurrence(k)
		if !ok {
			return 0, start, end, false
		}
		if end = start.Add(length); end.After(now) {
			return k, start, end, true
		}
	}
	return 0, start, end, false
}
