package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/verityhq/verity/internal/strictjson"
)

// Note tells the reader of a policy something Verity does not do exactly
// as Entra would: a property it does not support (Message starts with
// "unsupported: " and says how the engine treats it), or a change it made
// while reading (a template placeholder removed, a property name in the
// wrong case). Notes never stop a policy from being used; errors do.
type Note struct {
	Path    string // JSON path, e.g. "conditions.insiderRiskLevels" or "value[3].grantControls"
	Message string
}

// String writes "path: message".
func (n Note) String() string {
	if n.Path == "" {
		return n.Message
	}
	return n.Path + ": " + n.Message
}

// templatePlaceholder is what Microsoft's templates put in excludeUsers
// where the portal substitutes the signed-in administrator.
const templatePlaceholder = "Current administrator will be excluded"

// ParsePolicy reads one policy: a Graph conditionalAccessPolicy object, or
// a conditionalAccessTemplate (an object with "details"), and validates it.
// Errors name the JSON path. The notes list what Verity does not evaluate
// exactly (see Note).
func ParsePolicy(data []byte) (*Policy, []Note, error) {
	tree, err := decodeTree(data)
	if err != nil {
		return nil, nil, err
	}
	var notes []Note
	p, err := policyFromTree(tree, "", &notes)
	if err != nil {
		return nil, nil, err
	}
	return p, notes, nil
}

// ParsePolicies reads a document holding one policy, a JSON array of
// policies, or a Graph collection ({"value": [...]}, as GET
// /identity/conditionalAccess/policies or .../templates answers). Paths in
// errors and notes start with the element ("value[3].conditions...").
func ParsePolicies(data []byte) ([]*Policy, []Note, error) {
	tree, err := decodeTree(data)
	if err != nil {
		return nil, nil, err
	}
	var (
		items  []any
		prefix string
	)
	switch t := tree.(type) {
	case []any:
		items = t
	case map[string]any:
		v, ok := t["value"]
		if !ok {
			var notes []Note
			p, err := policyFromTree(tree, "", &notes)
			if err != nil {
				return nil, nil, err
			}
			return []*Policy{p}, notes, nil
		}
		for k := range t {
			if k != "value" && !strictjson.IsAnnotation(k) {
				return nil, nil, strictjson.Errorf(k, "unknown field; a collection holds only \"value\"")
			}
		}
		if items, ok = v.([]any); !ok {
			return nil, nil, strictjson.Errorf("value", "must be an array")
		}
		prefix = "value"
	default:
		return nil, nil, strictjson.Errorf("", "must be a policy object, an array of policies or a collection with \"value\"")
	}
	var notes []Note
	out := make([]*Policy, 0, len(items))
	for i, item := range items {
		p, err := policyFromTree(item, strictjson.Index(prefix, i), &notes)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, p)
	}
	return out, notes, nil
}

// decodeTree reads exactly one JSON value, numbers kept as json.Number.
func decodeTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		// strictjson words syntax errors the way the rest of Verity does.
		var v any
		if serr := strictjson.Unmarshal(data, &v); serr != nil {
			return nil, serr
		}
		return nil, &strictjson.FieldError{Message: err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &strictjson.FieldError{Message: "unexpected data after the JSON value"}
	}
	return tree, nil
}

// policyFromTree decodes one policy (or template) at path.
func policyFromTree(tree any, path string, notes *[]Note) (*Policy, error) {
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, strictjson.Errorf(path, "must be an object")
	}
	var tmpl *templateHead
	if _, isTemplate := obj["details"]; isTemplate {
		var err error
		if obj, tmpl, err = templateBody(obj, path, notes); err != nil {
			return nil, err
		}
	}
	bodyPath := path
	if tmpl != nil {
		bodyPath = strictjson.Join(path, "details")
	}
	fixCase(obj, reflect.TypeFor[Policy](), bodyPath, notes)
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, strictjson.Errorf(path, "%v", err)
	}
	p := new(Policy)
	if err := strictjson.Unmarshal(body, p); err != nil {
		return nil, prefixError(bodyPath, err)
	}
	dropEmpty(reflect.ValueOf(p).Elem())
	if tmpl != nil {
		p.TemplateID, p.DisplayName, p.Description = tmpl.ID, tmpl.Name, tmpl.Description
		if p.State == "" {
			p.State = StateReportOnly
			*notes = append(*notes, Note{path,
				"a template has no state; the policy is enabledForReportingButNotEnforced (report-only), as the Entra admin center proposes for a policy from a template"})
		}
	}
	if err := p.Validate(); err != nil {
		return nil, prefixError(bodyPath, err)
	}
	*notes = append(*notes, p.notes(bodyPath)...)
	return p, nil
}

// templateHead is the part of a conditionalAccessTemplate around its
// policy body.
type templateHead struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Scenarios   string `json:"scenarios"`
}

// templateBody checks a template's head and returns its details as a
// policy object, with the "Current administrator will be excluded"
// placeholder removed (noted).
func templateBody(obj map[string]any, path string, notes *[]Note) (map[string]any, *templateHead, error) {
	head := make(map[string]any, len(obj))
	for k, v := range obj {
		if k != "details" {
			head[k] = v
		}
	}
	b, _ := json.Marshal(head)
	t := new(templateHead)
	if err := strictjson.Unmarshal(b, t); err != nil {
		return nil, nil, prefixError(path, err)
	}
	details, ok := obj["details"].(map[string]any)
	if !ok {
		return nil, nil, strictjson.Errorf(strictjson.Join(path, "details"), "must be an object")
	}
	body := make(map[string]any, len(details))
	for k, v := range details {
		body[k] = v
	}
	dpath := strictjson.Join(path, "details")
	if cond, ok := body["conditions"].(map[string]any); ok {
		if users, ok := cond["users"].(map[string]any); ok {
			if ex, ok := users["excludeUsers"].([]any); ok {
				kept := ex[:0:0]
				for i, v := range ex {
					if v == templatePlaceholder {
						*notes = append(*notes, Note{strictjson.Index(strictjson.Join(dpath, "conditions.users.excludeUsers"), i),
							"template placeholder \"" + templatePlaceholder + "\" removed; exclude the administrator who creates the policy by id"})
						continue
					}
					kept = append(kept, v)
				}
				users["excludeUsers"] = kept
			}
		}
	}
	return body, t, nil
}

// fixCase renames object keys that match a property of t only when case
// is ignored ("GrantControls" for "grantControls", as one public policy
// repository writes it), noting each rename. encoding/json would accept
// them silently; strictjson would reject them.
func fixCase(node any, t reflect.Type, path string, notes *[]Note) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := node.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if strictjson.IsAnnotation(k) {
				continue
			}
			ft, exact := fields[k]
			if !exact {
				for name, typ := range fields {
					if strings.EqualFold(name, k) {
						if _, clash := n[name]; !clash {
							n[name] = n[k]
							delete(n, k)
							*notes = append(*notes, Note{strictjson.Join(path, k), "read as \"" + name + "\" (JSON property names are case-sensitive)"})
							k, ft, exact = name, typ, true
						}
						break
					}
				}
			}
			if !exact {
				continue
			}
			if arr, ok := n[k].([]any); ok && len(arr) == 0 && isStruct(ft) {
				// PowerShell writes an empty collection where an
				// object (or null) belongs.
				n[k] = nil
				*notes = append(*notes, Note{strictjson.Join(path, k), "empty array read as null"})
				continue
			}
			fixCase(n[k], ft, strictjson.Join(path, k), notes)
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return
		}
		for i, e := range n {
			fixCase(e, t.Elem(), strictjson.Index(path, i), notes)
		}
	}
}

// dropEmpty sets empty lists and unset verbatim properties to nil, so an
// empty list and an absent one read the same and a policy survives a round
// trip through JSON unchanged (empty lists are omitted on output).
func dropEmpty(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			dropEmpty(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				dropEmpty(v.Field(i))
			}
		}
	case reflect.Slice:
		if raw, ok := v.Interface().(json.RawMessage); ok {
			if !isSet(raw) {
				v.SetZero()
			}
			return
		}
		if v.Len() == 0 {
			v.SetZero()
		}
	}
}

func isStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// jsonFields maps a struct's JSON property names to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	if t == reflect.TypeFor[json.RawMessage]() {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

// prefixError puts path in front of the path of a *strictjson.FieldError.
func prefixError(path string, err error) error {
	if path == "" {
		return err
	}
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		p := path
		if fe.Path != "" {
			if strings.HasPrefix(fe.Path, "[") {
				p = path + fe.Path
			} else {
				p = strictjson.Join(path, fe.Path)
			}
		}
		return &strictjson.FieldError{Path: p, Message: fe.Message}
	}
	return fmt.Errorf("%s: %w", path, err)
}
