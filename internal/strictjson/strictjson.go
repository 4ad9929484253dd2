// Package strictjson decodes JSON documents into Go values and rejects what
// encoding/json would silently accept: unknown fields, values of the wrong
// type, numbers that do not fit, trailing data. Every error names the JSON
// path where it happened ("members[2].id: unknown field"), so a user can
// find it in a file of thousands of lines.
//
// OData annotations that Microsoft Graph exports carry ("@odata.type",
// "createdDateTime@odata.type", "#microsoft.graph.restore") are ignored, so
// Graph JSON imports as it is. strictjson imports no other Verity package.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FieldError is an error at one place in a document.
type FieldError struct {
	Path    string // JSON path, e.g. "conditions.users.includeGroups[2]"; "" for the whole document
	Message string
}

func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// Errorf returns a *FieldError at path.
func Errorf(path, format string, args ...any) *FieldError {
	return &FieldError{Path: path, Message: fmt.Sprintf(format, args...)}
}

// Join builds a child path: Join("a", "b") is "a.b", Join("", "b") is "b".
func Join(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

// Index builds an element path: Index("a", 2) is "a[2]".
func Index(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// IsAnnotation reports whether a key is an OData annotation or action
// advertisement rather than a property.
func IsAnnotation(key string) bool {
	return strings.HasPrefix(key, "@") || strings.HasPrefix(key, "#") || strings.Contains(key, "@odata.")
}

// Unmarshal decodes data into v (a non-nil pointer) strictly.
func Unmarshal(data []byte, v any) error {
	return Decode(bytes.NewReader(data), v)
}

// Decode reads exactly one JSON value from r into v strictly.
func Decode(r io.Reader, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("strictjson: decode target must be a non-nil pointer")
	}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &FieldError{Message: "unexpected data after the JSON value"}
	}
	if err := check(tree, rv.Type().Elem(), ""); err != nil {
		return err
	}
	if err := assign(tree, rv); err != nil {
		return err
	}
	return nil
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return &FieldError{Message: "empty document"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &FieldError{Message: "document ends in the middle of a JSON value"}
	case errors.As(err, &se):
		return &FieldError{Message: fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())}
	}
	// Read errors (a body over its size limit, a dropped connection) pass
	// through wrapped, so the caller can tell them from bad JSON.
	return fmt.Errorf("read document: %w", err)
}

// assign re-encodes the checked tree and lets encoding/json fill v, which
// keeps custom UnmarshalJSON methods working.
func assign(tree any, rv reflect.Value) error {
	b, err := json.Marshal(tree)
	if err != nil {
		return &FieldError{Message: err.Error()}
	}
	if err := json.Unmarshal(b, rv.Interface()); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return &FieldError{Path: ute.Field, Message: "must be " + typeName(ute.Type)}
		}
		var fe *FieldError
		if errors.As(err, &fe) {
			return fe
		}
		return &FieldError{Message: err.Error()}
	}
	return nil
}

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	rawMessage      = reflect.TypeFor[json.RawMessage]()
	timeType        = reflect.TypeFor[time.Time]()
)

// check walks the decoded tree against t and reports the first mismatch.
func check(node any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node == nil {
		return nil // null leaves the zero value, as encoding/json does
	}
	if t == rawMessage || t.Kind() == reflect.Interface {
		return nil
	}
	if t == timeType {
		// time.Time checks itself, but its error names no path.
		s, ok := node.(string)
		if !ok {
			return Errorf(path, "must be an RFC 3339 date-time string, not %s", kindOf(node))
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return Errorf(path, "must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z, not %q", s)
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return nil // the type validates itself
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		if _, ok := node.(string); !ok {
			return Errorf(path, "must be a string, not %s", kindOf(node))
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := node.(map[string]any)
		if !ok {
			return Errorf(path, "must be an object, not %s", kindOf(node))
		}
		fields := fieldsOf(t)
		for _, k := range sortedKeys(obj) {
			if IsAnnotation(k) {
				continue
			}
			ft, ok := fields[k]
			if !ok {
				return Errorf(Join(path, k), "unknown field")
			}
			if err := check(obj[k], ft, Join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		obj, ok := node.(map[string]any)
		if !ok {
			return Errorf(path, "must be an object, not %s", kindOf(node))
		}
		for _, k := range sortedKeys(obj) {
			if err := check(obj[k], t.Elem(), Join(path, k)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := node.(string); !ok {
				return Errorf(path, "must be a base64 string, not %s", kindOf(node))
			}
			return nil
		}
		arr, ok := node.([]any)
		if !ok {
			return Errorf(path, "must be an array, not %s", kindOf(node))
		}
		if t.Kind() == reflect.Array && len(arr) > t.Len() {
			return Errorf(path, "must have at most %d elements", t.Len())
		}
		for i, e := range arr {
			if err := check(e, t.Elem(), Index(path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		if _, ok := node.(string); !ok {
			return Errorf(path, "must be a string, not %s", kindOf(node))
		}
	case reflect.Bool:
		if _, ok := node.(bool); !ok {
			return Errorf(path, "must be true or false, not %s", kindOf(node))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := node.(json.Number)
		if !ok {
			return Errorf(path, "must be an integer, not %s", kindOf(node))
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			return Errorf(path, "must be an integer between %d and %d", int64(-1)<<(t.Bits()-1), int64(1)<<(t.Bits()-1)-1)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := node.(json.Number)
		if !ok {
			return Errorf(path, "must be a non-negative integer, not %s", kindOf(node))
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			return Errorf(path, "must be a non-negative integer of at most %d bits", t.Bits())
		}
	case reflect.Float32, reflect.Float64:
		n, ok := node.(json.Number)
		if !ok {
			return Errorf(path, "must be a number, not %s", kindOf(node))
		}
		f, err := strconv.ParseFloat(string(n), t.Bits())
		if err != nil || math.IsInf(f, 0) {
			return Errorf(path, "number out of range")
		}
	}
	return nil
}

func kindOf(node any) string {
	switch node.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return "null"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// sortedKeys makes the first error deterministic for the same input.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}

// fieldCache maps a struct type to its JSON field names and types. It is
// filled lazily and never invalidated: types do not change at run time.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	collectFields(t, fields)
	fieldCache.Store(t, fields)
	return fields
}

func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, into)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = f.Type
	}
}
