package detect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"
)

// Configure sets a detector's thresholds from a JSON object whose keys
// are the json names of its exported fields: numbers for counts and
// ratios, duration strings ("20m") for windows, strings and lists of
// strings. An unknown key, a value of the wrong type or a negative number
// is an error naming the key.
func Configure(d any, settings json.RawMessage) error {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(settings))
	if err := dec.Decode(&m); err != nil || m == nil {
		return fmt.Errorf("must be an object of settings")
	}
	v := reflect.ValueOf(d)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("detect: Configure needs a pointer to a detector")
	}
	v = v.Elem()
	fields := settable(v.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		i, ok := fields[k]
		if !ok {
			names := make([]string, 0, len(fields))
			for n := range fields {
				names = append(names, n)
			}
			slices.Sort(names)
			return fmt.Errorf("%s: unknown setting (settings: %s)", k, strings.Join(names, ", "))
		}
		if err := setField(v.Field(i), m[k]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	// Settings that parse but cannot be (a CIDR that is not one).
	if val, ok := d.(interface{ Validate() error }); ok {
		return val.Validate()
	}
	return nil
}

// Settings returns a detector's settings as Configure reads them (for
// documentation and `verity config` output).
func Settings(d any) map[string]any {
	v := reflect.ValueOf(d)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	out := map[string]any{}
	if v.Kind() != reflect.Struct {
		return out
	}
	for name, i := range settable(v.Type()) {
		f := v.Field(i)
		if f.Type() == reflect.TypeFor[time.Duration]() {
			out[name] = time.Duration(f.Int()).String()
		} else {
			out[name] = f.Interface()
		}
	}
	return out
}

// settable maps json names to the index of the fields Configure may set.
func settable(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		switch f.Type {
		case reflect.TypeFor[int](), reflect.TypeFor[float64](), reflect.TypeFor[time.Duration](),
			reflect.TypeFor[string](), reflect.TypeFor[[]string](), reflect.TypeFor[bool]():
			out[name] = i
		}
	}
	return out
}

func setField(f reflect.Value, raw json.RawMessage) error {
	switch f.Type() {
	case reflect.TypeFor[time.Duration]():
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("must be a duration string such as \"20m\"")
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as \"20m\", not %q", s)
		}
		f.SetInt(int64(d))
	case reflect.TypeFor[int]():
		var n int
		if err := json.Unmarshal(raw, &n); err != nil || n < 0 {
			return fmt.Errorf("must be a whole number, 0 or more")
		}
		f.SetInt(int64(n))
	case reflect.TypeFor[float64]():
		var x float64
		if err := json.Unmarshal(raw, &x); err != nil || x < 0 {
			return fmt.Errorf("must be a number, 0 or more")
		}
		f.SetFloat(x)
	case reflect.TypeFor[bool]():
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("must be true or false")
		}
		f.SetBool(b)
	case reflect.TypeFor[string]():
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("must be a string")
		}
		f.SetString(s)
	case reflect.TypeFor[[]string]():
		var l []string
		if err := json.Unmarshal(raw, &l); err != nil {
			return fmt.Errorf("must be a list of strings")
		}
		f.Set(reflect.ValueOf(l))
	}
	return nil
}
