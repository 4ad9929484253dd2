package rbac

import (
	"math"
	"time"

	"github.com/verityhq/verity/internal/schedule"
)

// Time-bound assignments: an assignment with a window grants only while
// the request's time is in it. The compiled form keeps windows as int64
// unix nanoseconds in one dense array (Engine.windows), found from a
// principal's entry without reading the assignment's record.

// inForceAt reports whether assignment a is in force at now (unix
// nanoseconds).
func (e *Engine) inForceAt(a *compiledAssignment, now int64) bool {
	return !a.timed || e.windows[a.win].Contains(now)
}

// endOf is when a stops being in force, nil when it does not end; shared
// with the caller's Assignment.
func endOf(a *compiledAssignment) *time.Time {
	if !a.timed {
		return nil
	}
	return a.src.EndDateTime
}

// requestTime is the time of a request in unix nanoseconds: now, or the
// current time when now is zero.
func requestTime(now time.Time) int64 {
	if now.IsZero() {
		now = time.Now()
	}
	return schedule.UnixNanos(now)
}

// winFar marks a principalEntry whose window index does not fit in win.
const winFar = math.MaxUint16

// entryWin is the principalEntry.win of an assignment.
func entryWin(a *compiledAssignment) uint16 {
	switch {
	case !a.timed:
		return 0
	case a.win < winFar-1:
		return uint16(a.win + 1)
	}
	return winFar
}
