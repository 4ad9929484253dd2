// Package devicefilter compiles and evaluates the device filters of
// conditional access policies (Graph conditions.devices.deviceFilter:
// {"mode": "include"|"exclude", "rule": "device.trustType -eq \"ServerAD\""}).
//
// It owns the rule language — the Entra dynamic-membership syntax restricted
// to the device attributes that filters for devices support — and the
// documented behaviour for registered and unregistered devices. Parse turns a
// rule into an immutable, pre-compiled *Rule; Rule.Match and Filter.Applies
// evaluate it on the hot path without allocating.
//
// Semantics follow Microsoft's "Conditional Access: Filter for devices" and
// "rules for dynamic membership groups" pages (see testdata/README.md for the
// versions read). Where Verity differs or the docs are silent, the doc comment
// of the name concerned says so.
//
// devicefilter imports the standard library only; it must never import
// another Verity package (the access package above it imports this one).
package devicefilter
