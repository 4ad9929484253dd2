package directory

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Store kinds of the directory's resources.
const (
	KindUser             = "user"
	KindGroup            = "group"
	KindApplication      = "application"
	KindServicePrincipal = "servicePrincipal"
	KindNamedLocation    = "namedLocation"
	KindRoleAssignment   = "directoryRoleAssignment"
	KindIdentityProvider = "identityProvider"
)

// Resource is what every directory type implements (through its pointer).
type Resource interface {
	// ObjectID is the resource's id, "" until the server assigns one.
	ObjectID() string
	// SetObjectID sets the id; the API calls it on create.
	SetObjectID(id string)
	// SetCreatedDateTime sets the read-only createdDateTime; the API calls
	// it on create.
	SetCreatedDateTime(t time.Time)
	// Normalize fills defaults and puts values in canonical form (lower-case
	// GUIDs, canonical enum case, sorted sets). It is idempotent.
	Normalize()
	// Validate reports the first problem as a *strictjson.FieldError that
	// names the JSON path. Call Normalize first.
	Validate() error
}

// Descriptor is the untyped face of a Kind, for code that iterates over all
// directory kinds (the API's routes, policy as code, export).
type Descriptor interface {
	// Name is the store kind, e.g. "user".
	Name() string
	// Collection is the Graph collection name, e.g. "users".
	Collection() string
	// New returns a new zero resource of the kind.
	New() Resource
	// DecodeResource decodes body strictly (see Kind.Decode).
	DecodeResource(body []byte) (Resource, error)
	// KeyOf is the store key of r ("" when the kind has none or r is not of
	// the kind).
	KeyOf(r Resource) string
	// ObjectOf encodes r as a store object of the kind.
	ObjectOf(r Resource) (store.Object, error)
}

// resourcePtr constrains P to be *T and a Resource.
type resourcePtr[T any] interface {
	*T
	Resource
}

// Kind describes one directory kind whose Go type is T.
type Kind[T any, P resourcePtr[T]] struct {
	name       string
	collection string
	key        func(P) string // nil when the kind has no natural key
	// graphOnly lists Graph properties Verity does not model; Decode accepts
	// and drops them so that full Graph exports import, while any other
	// unknown property is still an error.
	graphOnly map[string]bool
	// prepare, when set, rewrites Graph-only shapes of the document's top
	// level (members@odata.bind, an application's web.implicitGrantSettings)
	// into Verity's before strict decoding.
	// It reports whether it changed anything.
	prepare func(top map[string]json.RawMessage) (bool, error)
}

func newKind[T any, P resourcePtr[T]](name, collection string, key func(P) string, graphOnly []string) *Kind[T, P] {
	k := &Kind[T, P]{name: name, collection: collection, key: key, graphOnly: map[string]bool{}}
	for _, p := range graphOnly {
		k.graphOnly[p] = true
	}
	return k
}

func withPrepare[T any, P resourcePtr[T]](k *Kind[T, P], prepare func(map[string]json.RawMessage) (bool, error)) *Kind[T, P] {
	k.prepare = prepare
	return k
}

// The directory kinds, in the order an import or apply should write them
// (objects referenced by others first).
var (
	// Users describes KindUser.
	Users = newKind[User]("user", "users", func(u *User) string { return u.Key() }, userGraphOnly)
	// Groups describes KindGroup.
	Groups = withPrepare(newKind[Group]("group", "groups", func(g *Group) string { return g.Key() }, groupGraphOnly), bindMembers)
	// Applications describes KindApplication.
	Applications = withPrepare(newKind[Application]("application", "applications", func(a *Application) string { return a.Key() }, applicationGraphOnly), prepareApplication)
	// ServicePrincipals describes KindServicePrincipal.
	ServicePrincipals = newKind[ServicePrincipal]("servicePrincipal", "servicePrincipals", func(s *ServicePrincipal) string { return s.Key() }, servicePrincipalGraphOnly)
	// NamedLocations describes KindNamedLocation.
	NamedLocations = newKind[NamedLocation]("namedLocation", "namedLocations", func(n *NamedLocation) string { return n.Key() }, nil)
	// RoleAssignments describes KindRoleAssignment.
	RoleAssignments = newKind[RoleAssignment]("directoryRoleAssignment", "roleAssignments", nil, nil)
	// IdentityProviders describes KindIdentityProvider.
	IdentityProviders = newKind[IdentityProvider]("identityProvider", "identityProviders", func(p *IdentityProvider) string { return p.Key() }, nil)
	// AppRoutes describes KindAppRoute.
	AppRoutes = newKind[AppRoute](KindAppRoute, "appRoutes", func(r *AppRoute) string { return r.Key() }, nil)
)

// Kinds lists every directory kind, referenced kinds first.
func Kinds() []Descriptor {
	return []Descriptor{Users, Applications, ServicePrincipals, Groups, NamedLocations, RoleAssignments, IdentityProviders, AppRoutes}
}

// Lookup finds a kind by store kind name.
func Lookup(kind string) (Descriptor, bool) {
	for _, d := range Kinds() {
		if d.Name() == kind {
			return d, true
		}
	}
	return nil, false
}

// LookupCollection finds a kind by Graph collection name ("users").
func LookupCollection(collection string) (Descriptor, bool) {
	for _, d := range Kinds() {
		if d.Collection() == collection {
			return d, true
		}
	}
	return nil, false
}

// Decode decodes body strictly as a resource of the given store kind. The
// result is neither normalised nor validated.
func Decode(kind string, body []byte) (Resource, error) {
	d, ok := Lookup(kind)
	if !ok {
		return nil, fmt.Errorf("decode: unknown directory kind %q", kind)
	}
	return d.DecodeResource(body)
}

// Parse decodes body strictly as a resource of the given store kind, then
// normalises and validates it.
func Parse(kind string, body []byte) (Resource, error) {
	r, err := Decode(kind, body)
	if err != nil {
		return nil, err
	}
	r.Normalize()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Name is the store kind.
func (k *Kind[T, P]) Name() string { return k.name }

// Collection is the Graph collection name.
func (k *Kind[T, P]) Collection() string { return k.collection }

// New returns a new zero resource.
func (k *Kind[T, P]) New() Resource { return P(new(T)) }

// Key is the store key of v, "" when the kind has none.
func (k *Kind[T, P]) Key(v P) string {
	if k.key == nil {
		return ""
	}
	return k.key(v)
}

// Decode decodes body strictly: unknown properties and wrong types are
// errors naming their JSON path, OData annotations are ignored, and Graph
// properties Verity does not model (GraphOnlyProperties) are dropped. The
// result is neither normalised nor validated.
func (k *Kind[T, P]) Decode(body []byte) (P, error) {
	body, err := k.rewrite(body)
	if err != nil {
		return nil, err
	}
	v := P(new(T))
	if err := strictjson.Unmarshal(body, v); err != nil {
		return nil, err
	}
	return v, nil
}

// Parse decodes body strictly, normalises and validates it.
func (k *Kind[T, P]) Parse(body []byte) (P, error) {
	v, err := k.Decode(body)
	if err != nil {
		return nil, err
	}
	v.Normalize()
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return v, nil
}

// GraphOnlyProperties lists, sorted, the Graph properties Decode accepts
// and drops.
func (k *Kind[T, P]) GraphOnlyProperties() []string {
	return slices.Sorted(maps.Keys(k.graphOnly))
}

// rewrite drops Graph-only properties and applies prepare.
func (k *Kind[T, P]) rewrite(body []byte) ([]byte, error) {
	if len(k.graphOnly) == 0 && k.prepare == nil {
		return body, nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		return body, nil // not an object: strictjson explains what is wrong
	}
	changed := false
	for p := range top {
		if k.graphOnly[p] {
			delete(top, p)
			changed = true
		}
	}
	if k.prepare != nil {
		prepared, err := k.prepare(top)
		if err != nil {
			return nil, err
		}
		changed = changed || prepared
	}
	if !changed {
		return body, nil
	}
	b, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", k.name, err)
	}
	return b, nil
}

// DecodeResource implements Descriptor.
func (k *Kind[T, P]) DecodeResource(body []byte) (Resource, error) {
	v, err := k.Decode(body)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// KeyOf implements Descriptor.
func (k *Kind[T, P]) KeyOf(r Resource) string {
	v, ok := r.(P)
	if !ok {
		return ""
	}
	return k.Key(v)
}

// ObjectOf implements Descriptor.
func (k *Kind[T, P]) ObjectOf(r Resource) (store.Object, error) {
	v, ok := r.(P)
	if !ok {
		return store.Object{}, fmt.Errorf("encode %s: got %T", k.name, r)
	}
	return k.Object(v)
}

// Errors of Object: the server assigns ids and appIds before storing.
var (
	errNoID  = errors.New("the object has no id")
	errNoKey = errors.New("the object has no natural key")
)

// Object encodes v as a store object (Kind, ID, Key, Body); the caller sets
// ManagedBy. v should be normalised and valid.
func (k *Kind[T, P]) Object(v P) (store.Object, error) {
	if v.ObjectID() == "" {
		return store.Object{}, fmt.Errorf("encode %s: %w", k.name, errNoID)
	}
	key := k.Key(v)
	if k.key != nil && key == "" {
		return store.Object{}, fmt.Errorf("encode %s %s: %w", k.name, v.ObjectID(), errNoKey)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return store.Object{}, fmt.Errorf("encode %s %s: %w", k.name, v.ObjectID(), err)
	}
	return store.Object{Kind: k.name, ID: v.ObjectID(), Key: key, Body: body}, nil
}

// FromObject decodes a stored object. Stored bodies were validated when
// written, so it decodes leniently (and fast); the object's ID wins over
// the body's. The result is normalised.
func (k *Kind[T, P]) FromObject(o store.Object) (P, error) {
	v := P(new(T))
	if err := k.decodeObject(o, v); err != nil {
		return nil, err
	}
	return v, nil
}

func (k *Kind[T, P]) decodeObject(o store.Object, v P) error {
	if o.Kind != k.name {
		return fmt.Errorf("decode %s %s: object is of kind %q", k.name, o.ID, o.Kind)
	}
	if err := json.Unmarshal(o.Body, v); err != nil {
		return fmt.Errorf("decode %s %s: %w", k.name, o.ID, err)
	}
	v.SetObjectID(o.ID)
	v.Normalize()
	return nil
}
