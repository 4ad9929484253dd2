package rbac

import (
	"math"
	"time"
)

// Time-bound assignments: an assignment with a window grants only while
// the request's time is in it. The compiled form keeps windows as int64
// unix nanoseconds in one dense array (Engine.windows), found from a
// principal's entry without reading the assignment's record.

// inForceAt reports whether assignment a is in force at now (unix
// nanoseconds).
func (e *Engine) inForceAt(a *compiledAssignment, now int64) bool {
	return !a.timed || e.windows[a.win].contains(now)
}

// endOf is when a stops being in force, nil when it does not end; shared
// with the caller's Assignment.
func endOf(a *compiledAssignment) *time.Time {
	if !a.timed {
		return nil
	}
	return a.src.EndDateTime
}

// window is a time range [notBefore, notAfter) in unix nanoseconds; an
// open side is at the int64 limit.
type window struct{ notBefore, notAfter int64 }

func (w window) contains(now int64) bool { return w.notBefore <= now && now < w.notAfter }

// windowOf is a's window, and whether it has one.
func windowOf(a *Assignment) (window, bool) {
	w := window{math.MinInt64, math.MaxInt64}
	if a.StartDateTime != nil {
		w.notBefore = unixNanos(*a.StartDateTime)
	}
	if a.EndDateTime != nil {
		w.notAfter = unixNanos(*a.EndDateTime)
	}
	return w, a.StartDateTime != nil || a.EndDateTime != nil
}

// unixNanos is t in unix nanoseconds, clamped to the int64 range (years
// 1678 to 2262), which keeps the order of times.
func unixNanos(t time.Time) int64 {
	const lim = math.MaxInt64 / int64(time.Second)
	switch s := t.Unix(); {
	case s <= -lim:
		return math.MinInt64
	case s >= lim:
		return math.MaxInt64
	}
	return t.UnixNano()
}

// requestTime is the time of a request in unix nanoseconds: now, or the
// current time when now is zero.
func requestTime(now time.Time) int64 {
	if now.IsZero() {
		now = time.Now()
	}
	return unixNanos(now)
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
