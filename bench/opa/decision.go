package opabench

import (
	"fmt"
	"slices"
	"strings"
)

// Decision is the outcome of one sign-in in a form both engines are
// reduced to before they are compared.
type Decision struct {
	// Outcome is "notApplied" (no enabled policy applies), "grant"
	// (every applying enabled policy is satisfied), "interrupt" (some
	// are not: the user must satisfy Unmet) or "block" (one blocks, or a
	// legacy authentication client does not satisfy one).
	Outcome string
	// Enforced and ReportOnly are the ids of the enabled and report-only
	// policies that apply, sorted.
	Enforced   []string
	ReportOnly []string
	// Unmet lists the grant requirements of the applying enabled policies
	// (those that do not block) not yet satisfied: each entry is a
	// "|"-joined sorted list of controls any one of which satisfies that
	// requirement (one control for a policy needing all of its controls,
	// all of them for a policy needing any one). Sorted, without
	// duplicates.
	Unmet []string
}

func (d *Decision) normalize() {
	slices.Sort(d.Enforced)
	slices.Sort(d.ReportOnly)
	slices.Sort(d.Unmet)
	d.Unmet = slices.Compact(d.Unmet)
}

// Equal reports whether two normalized decisions are the same.
func (d Decision) Equal(o Decision) bool {
	return d.Outcome == o.Outcome && slices.Equal(d.Enforced, o.Enforced) &&
		slices.Equal(d.ReportOnly, o.ReportOnly) && slices.Equal(d.Unmet, o.Unmet)
}

func (d Decision) String() string {
	return fmt.Sprintf("%s enforced=[%s] reportOnly=[%s] unmet=[%s]", d.Outcome,
		strings.Join(d.Enforced, " "), strings.Join(d.ReportOnly, " "), strings.Join(d.Unmet, " "))
}

func (r Request) String() string {
	return fmt.Sprintf("user=%s app=%s client=%s platform=%q ip=%s signInRisk=%s userRisk=%s satisfied=%v",
		r.UserID, r.AppID, r.ClientAppType, r.Platform, r.IP, r.SignInRisk, r.UserRisk, r.Satisfied)
}
