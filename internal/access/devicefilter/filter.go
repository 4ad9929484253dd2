package devicefilter

import (
	"fmt"
	"strings"
)

// Mode is the mode of a device filter: what happens to devices the rule
// matches.
type Mode uint8

const (
	// ModeInclude: the policy applies only to devices the rule matches.
	ModeInclude Mode = iota + 1
	// ModeExclude: devices the rule matches are taken out of the policy's
	// scope; it applies to every other device.
	ModeExclude
)

// ParseMode reads the Graph filterMode, "include" or "exclude" (in any case).
func ParseMode(s string) (Mode, error) {
	switch {
	case strings.EqualFold(s, "include"):
		return ModeInclude, nil
	case strings.EqualFold(s, "exclude"):
		return ModeExclude, nil
	}
	return 0, fmt.Errorf("mode: %q is not a filter mode (expected include or exclude)", s)
}

// String returns the Graph spelling, "include" or "exclude".
func (m Mode) String() string {
	switch m {
	case ModeInclude:
		return "include"
	case ModeExclude:
		return "exclude"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Applies reports whether a policy whose device filter is this rule in the
// given mode applies to a sign-in from d (nil: a device the directory does
// not know). It is the whole device-filter condition of a policy:
//
//	include: the policy applies iff the rule matches d
//	exclude: the policy applies iff the rule does not match d
//
// and Match already treats an unregistered device as Microsoft documents
// ("all device properties are considered as null values"). For example, an
// exclude filter
//
//	device.isCompliant -eq True
//
// leaves unregistered devices in scope, and an include filter
//
//	device.trustType -ne "ServerAD"
//
// brings them in. An invalid mode fails safe: the policy applies.
func (r *Rule) Applies(mode Mode, d *Device) bool {
	m := r.Match(d)
	if mode == ModeExclude {
		return !m
	}
	return m || mode != ModeInclude
}

// Filter is a compiled Graph conditionalAccessFilter on devices
// (conditions.devices.deviceFilter). The zero Filter is an unconfigured
// condition, which restricts nothing.
type Filter struct {
	Mode Mode
	Rule *Rule
}

// ParseFilter compiles the mode and rule of a deviceFilter.
func ParseFilter(mode, rule string) (Filter, error) {
	m, err := ParseMode(mode)
	if err != nil {
		return Filter{}, err
	}
	r, err := Parse(rule)
	if err != nil {
		return Filter{}, err
	}
	return Filter{Mode: m, Rule: r}, nil
}

// Applies reports whether the policy that carries f applies to a sign-in
// from d, as far as its device filter decides: true when f is unconfigured,
// otherwise f.Rule.Applies(f.Mode, d). This is the function the decision
// engine calls.
func (f Filter) Applies(d *Device) bool {
	if f.Rule == nil {
		return true
	}
	return f.Rule.Applies(f.Mode, d)
}
