package strictjson

import (
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	ID   string `json:"id"`
	Size int8   `json:"size,omitempty"`
}

type doc struct {
	Name    string            `json:"name"`
	Enabled *bool             `json:"enabled,omitempty"`
	Count   uint16            `json:"count,omitempty"`
	Ratio   float64           `json:"ratio,omitempty"`
	Items   []inner           `json:"items,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	Nested  *inner            `json:"nested,omitempty"`
	Until   *time.Time        `json:"until,omitempty"`
	embedded
}

type embedded struct {
	Extra string `json:"extra,omitempty"`
}

func TestUnmarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr string // exact Error(); "" for success
	}{
		{"valid", `{"name":"a","enabled":true,"count":3,"items":[{"id":"x","size":-4}],"labels":{"k":"v"},"extra":"e"}`, ""},
		{"odata annotations ignored", `{"@odata.type":"#microsoft.graph.user","name":"a","count@odata.type":"#Int32","#microsoft.graph.restore":{"title":"x"}}`, ""},
		{"null keeps zero", `{"name":null,"nested":null}`, ""},
		{"unknown top-level field", `{"name":"a","nmae":"b"}`, "nmae: unknown field"},
		{"unknown nested field", `{"items":[{"id":"x"},{"id":"y","colour":1}]}`, "items[1].colour: unknown field"},
		{"unknown field in pointer struct", `{"nested":{"idd":"x"}}`, "nested.idd: unknown field"},
		{"wrong type string", `{"name":5}`, "name: must be a string, not a number"},
		{"wrong type bool", `{"enabled":"yes"}`, "enabled: must be true or false, not a string"},
		{"wrong type array", `{"items":{"id":"x"}}`, "items: must be an array, not an object"},
		{"wrong type map value", `{"labels":{"k":1}}`, "labels.k: must be a string, not a number"},
		{"int overflow", `{"items":[{"id":"x","size":300}]}`, "items[0].size: must be an integer between -128 and 127"},
		{"fraction for int", `{"items":[{"id":"x","size":1.5}]}`, "items[0].size: must be an integer between -128 and 127"},
		{"negative uint", `{"count":-1}`, "count: must be a non-negative integer of at most 16 bits"},
		{"not an object", `[1,2]`, "must be an object, not an array"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, "unexpected data after the JSON value"},
		{"empty", ``, "empty document"},
		{"truncated", `{"name":"a"`, "document ends in the middle of a JSON value"},
		{"case-variant field is unknown", `{"Name":"a"}`, "Name: unknown field"},
		{"date-time", `{"until":"2026-01-02T15:04:05.5+01:00"}`, ""},
		{"date-time not a string", `{"until":5}`, "until: must be an RFC 3339 date-time string, not a number"},
		{"date-time without zone", `{"until":"2026-01-02T15:04:05"}`, `until: must be an RFC 3339 date-time such as 2026-01-02T15:04:05Z, not "2026-01-02T15:04:05"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d doc
			err := Unmarshal([]byte(tt.in), &d)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tt.wantErr)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			if err.Error() != tt.wantErr {
				t.Fatalf("error %q; want %q", err.Error(), tt.wantErr)
			}
		})
	}
}

func TestUnmarshalFillsValues(t *testing.T) {
	t.Parallel()
	var d doc
	if err := Unmarshal([]byte(`{"name":"n","enabled":false,"items":[{"id":"a","size":7}],"extra":"e"}`), &d); err != nil {
		t.Fatal(err)
	}
	if d.Name != "n" || d.Enabled == nil || *d.Enabled || len(d.Items) != 1 || d.Items[0].Size != 7 || d.Extra != "e" {
		t.Fatalf("decoded %+v", d)
	}
}

func TestMalformedReportsOffset(t *testing.T) {
	t.Parallel()
	var d doc
	err := Unmarshal([]byte(`{"name": "a",, }`), &d)
	if err == nil || !strings.Contains(err.Error(), "malformed JSON at byte") {
		t.Fatalf("error %v; want a byte offset", err)
	}
}

func TestTargetMustBePointer(t *testing.T) {
	t.Parallel()
	var d doc
	if err := Unmarshal([]byte(`{}`), d); err == nil {
		t.Fatal("decoding into a non-pointer succeeded")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"name":"a","items":[{"id":"x","size":1}]}`, `{"labels":{"a":"b"}}`, `[]`, `{"@odata.type":1}`, `{"count":65536}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d doc
		err := Unmarshal(b, &d)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) && !strings.HasPrefix(err.Error(), "read document") {
				t.Fatalf("error %T is neither a FieldError nor a read error: %v", err, err)
			}
		}
	})
}
