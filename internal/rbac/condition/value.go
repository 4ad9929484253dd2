package condition

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Source is where an attribute comes from: the @Resource, @Request,
// @Principal or @Environment part of an attribute reference.
type Source uint8

// The attribute sources of condition version 2.0.
const (
	SourceResource Source = iota
	SourceRequest
	SourcePrincipal
	SourceEnvironment
	numSources
)

var sourceNames = [numSources]string{"Resource", "Request", "Principal", "Environment"}

// String returns the source as written after '@', as in "Resource".
func (s Source) String() string {
	if s < numSources {
		return sourceNames[s]
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// Kind is the type of a Value and of the operands an operator compares.
type Kind uint8

// Value kinds. A KindString value converts to the kind an operator needs
// when the condition is evaluated; the other kinds are pre-parsed and do not
// convert.
const (
	KindString Kind = iota
	KindNumber      // integer (the documented numeric operators take integers only)
	KindBool
	KindDateTime
	KindGUID
)

var kindNames = [...]string{"string", "number", "boolean", "datetime", "GUID"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// GUID is a 128-bit identifier such as a role definition ID, compared as
// bytes (so case and hyphens in its text form do not matter).
type GUID [16]byte

// ParseGUID reads a GUID written as 32 hexadecimal digits, with or without
// the hyphens of the 8-4-4-4-12 form, in any case. Built-in role definition
// conditions use both forms.
func ParseGUID(s string) (GUID, bool) {
	var g GUID
	switch len(s) {
	case 32:
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return g, false
		}
	default:
		return g, false
	}
	j := 0
	for i := 0; i < len(s); {
		if len(s) == 36 && (i == 8 || i == 13 || i == 18 || i == 23) {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return GUID{}, false
		}
		g[j] = hi<<4 | lo
		j++
		i += 2
	}
	return g, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// String returns the lower-case 8-4-4-4-12 form.
func (g GUID) String() string {
	const hexdig = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, x := range g {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexdig[x>>4], hexdig[x&0xf]
		j += 2
	}
	return string(b[:])
}

// Value is one value of an attribute, or one literal of a condition. Build
// values with String, Number, Bool, DateTime and GUIDValue; the zero Value
// is the empty string.
type Value struct {
	kind Kind
	b    bool
	num  int64
	str  string
	t    time.Time
	guid GUID
}

// String returns a string value. It converts to another kind at evaluation
// when an operator needs one ("42" for NumericEquals, a GUID for GuidEquals).
func String(s string) Value { return Value{kind: KindString, str: s} }

// Number returns an integer value.
func Number(n int64) Value { return Value{kind: KindNumber, num: n} }

// Bool returns a boolean value.
func Bool(b bool) Value { return Value{kind: KindBool, b: b} }

// DateTime returns a date-time value.
func DateTime(t time.Time) Value { return Value{kind: KindDateTime, t: t} }

// GUIDValue returns a GUID value.
func GUIDValue(g GUID) Value { return Value{kind: KindGUID, guid: g} }

// Strings returns string values, for multi-valued attributes such as tags
// or custom security attributes.
func Strings(ss ...string) []Value {
	vs := make([]Value, len(ss))
	for i, s := range ss {
		vs[i] = String(s)
	}
	return vs
}

// Kind returns the type of v.
func (v Value) Kind() Kind { return v.kind }

// String renders v as a condition literal would write it, without quotes.
func (v Value) String() string {
	switch v.kind {
	case KindNumber:
		return strconv.FormatInt(v.num, 10)
	case KindBool:
		return strconv.FormatBool(v.b)
	case KindDateTime:
		return v.t.UTC().Format(time.RFC3339Nano)
	case KindGUID:
		return v.guid.String()
	}
	return v.str
}

// as converts v to kind k. Only strings convert; a typed value of another
// kind is a type mismatch. It does not allocate unless it fails.
func (v Value) as(k Kind) (Value, bool) {
	if v.kind == k {
		return v, true
	}
	if v.kind != KindString {
		return Value{}, false
	}
	return parseLiteral(k, v.str)
}

// parseLiteral reads s as a value of kind k: an optionally signed decimal
// integer, true or false in any case, an RFC 3339 date-time (Azure writes
// yyyy-mm-ddThh:mm:ss.fffffffZ), or a GUID.
func parseLiteral(k Kind, s string) (Value, bool) {
	switch k {
	case KindString:
		return String(s), true
	case KindNumber:
		n, err := strconv.ParseInt(s, 10, 64)
		return Number(n), err == nil
	case KindBool:
		switch {
		case strings.EqualFold(s, "true"):
			return Bool(true), true
		case strings.EqualFold(s, "false"):
			return Bool(false), true
		}
	case KindDateTime:
		t, err := time.Parse(time.RFC3339Nano, s)
		return DateTime(t), err == nil
	case KindGUID:
		g, ok := ParseGUID(s)
		return GUIDValue(g), ok
	}
	return Value{}, false
}

// Attributes holds the values of one source's attributes by name, as
// written between the brackets of a reference without any
// <$key_case_sensitive$> suffix ("Microsoft.Storage/storageAccounts/blobServices/containers:name").
// An attribute with no values is treated as absent.
type Attributes map[string][]Value

// lookup finds the attribute a refers to. Names match case-insensitively,
// except the key after the last ':' when the reference is marked
// <$key_case_sensitive$>. An exact match is tried first so the common case
// is one map access; the fallback scans the map without allocating.
func (m Attributes) lookup(a *attribute) []Value {
	if len(m) == 0 {
		return nil
	}
	if vs, ok := m[a.name]; ok {
		return vs
	}
	for k, vs := range m {
		if a.matches(k) {
			return vs
		}
	}
	return nil
}

// Request is what a condition is evaluated against: the action (and, for
// actions that have them, the sub-operation) being checked, and the
// attribute values of each source. Environment attributes such as UtcNow
// are supplied by the caller, so evaluation is deterministic.
type Request struct {
	Action       string // e.g. Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read
	SubOperation string // e.g. Blob.List; empty when the action has none
	Resource     Attributes
	Request      Attributes
	Principal    Attributes
	Environment  Attributes
}

func (r *Request) source(s Source) Attributes {
	switch s {
	case SourceResource:
		return r.Resource
	case SourceRequest:
		return r.Request
	case SourcePrincipal:
		return r.Principal
	case SourceEnvironment:
		return r.Environment
	}
	return nil
}

// attribute is a parsed @Source[name] reference.
type attribute struct {
	source  Source
	name    string // without the <$key_case_sensitive$> suffix
	keyCase bool   // <$key_case_sensitive$>: the key after the last ':' is case sensitive
	pos     int    // 0-based byte offset of '@'
}

const keyCaseSuffix = "<$key_case_sensitive$>"

func (a *attribute) String() string {
	s := "@" + a.source.String() + "[" + a.name
	if a.keyCase {
		s += keyCaseSuffix
	}
	return s + "]"
}

// matches reports whether the map key k names a.
func (a *attribute) matches(k string) bool {
	if len(k) != len(a.name) && !hasNonASCII(k) && !hasNonASCII(a.name) {
		return false
	}
	if !a.keyCase {
		return strings.EqualFold(k, a.name)
	}
	i := strings.LastIndexByte(a.name, ':')
	j := strings.LastIndexByte(k, ':')
	if i < 0 || j < 0 {
		return k == a.name
	}
	return strings.EqualFold(k[:j], a.name[:i]) && k[j:] == a.name[i:]
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}
