package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// identityProviders registers the identity provider collection at base
// (Graph's /identity/identityProviders). The client secret is write-only:
// create and update take it as "clientSecret" and keep it sealed in a
// record beside the provider, never in the object; reads show "****" when
// one is set, as Graph does; deleting a provider deletes its secret.
func (s *Server) identityProviders(base string) {
	k := directoryKind(directory.IdentityProviders, false, "Verity.Directory/identityProviders", "/directory/identityProviders")
	first := len(s.routes)
	s.collection(base, k)
	for i := first; i < len(s.routes); i++ {
		switch rt := &s.routes[i]; rt.Name {
		case "identityProviders.list":
			rt.handler = s.withSecretPlaceholder(k, s.listObjects)
		case "identityProviders.get":
			rt.handler = s.withSecretPlaceholder(k, s.getObject)
		case "identityProviders.create":
			rt.handler = s.createIdentityProvider(k)
		case "identityProviders.update":
			rt.handler = s.updateIdentityProvider(k)
		case "identityProviders.delete":
			rt.handler = s.deleteIdentityProvider(rt.handler)
		}
	}
}

// identityProviderView is an identity provider as the API shows it.
type identityProviderView struct {
	*directory.IdentityProvider
	// ClientSecret is "****" when a secret is set, absent otherwise.
	ClientSecret string `json:"clientSecret,omitempty"`
}

// withSecretPlaceholder serves a read whose view says whether each
// provider has a client secret.
func (s *Server) withSecretPlaceholder(k resourceKind, handler func(resourceKind) handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		k2 := k
		k2.view = func(res directory.Resource) any {
			p := res.(*directory.IdentityProvider)
			has, err := directory.HasIdentityProviderSecret(r.Context(), s.opts.Store, p)
			if err != nil {
				return failedView{err}
			}
			return secretView(p, has)
		}
		return handler(k2)(w, r, c)
	}
}

func secretView(p *directory.IdentityProvider, has bool) identityProviderView {
	v := identityProviderView{IdentityProvider: p}
	if has {
		v.ClientSecret = directory.ClientSecretPlaceholder
	}
	return v
}

// secretChange is what a request body asks of the client secret.
type secretChange struct {
	set    string // the new secret, when set
	remove bool   // "clientSecret": null in an update
}

func (sc secretChange) any() bool { return sc.set != "" || sc.remove }

// takeSecret removes "clientSecret" from a request body and says what it
// asks for. The placeholder reads show leaves the secret as it is in an
// update, and is refused in a create.
func takeSecret(r *http.Request, create bool) (secretChange, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return secretChange{}, invalid(err)
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || top == nil {
		r.Body = io.NopCloser(bytes.NewReader(body)) // the generic handler explains what is wrong
		return secretChange{}, nil
	}
	raw, ok := top["clientSecret"]
	if !ok {
		r.Body = io.NopCloser(bytes.NewReader(body))
		return secretChange{}, nil
	}
	delete(top, "clientSecret")
	var sc secretChange
	switch {
	case string(raw) == "null":
		sc.remove = !create
	default:
		var secret string
		if err := json.Unmarshal(raw, &secret); err != nil {
			return secretChange{}, invalid(strictjson.Errorf("clientSecret", "must be a string"))
		}
		if secret == directory.ClientSecretPlaceholder && !create {
			break // unchanged, as a read showed it
		}
		if err := directory.CheckClientSecret("clientSecret", secret); err != nil {
			return secretChange{}, invalid(err)
		}
		sc.set = secret
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return secretChange{}, err
	}
	r.Body = io.NopCloser(bytes.NewReader(rest))
	r.ContentLength = int64(len(rest))
	return sc, nil
}

// errNoSealer is a client secret sent to a node that cannot seal it.
var errNoSealer = problemf(http.StatusServiceUnavailable, CodeInternal, "this node has no keyring to seal client secrets with; retry on a fully configured node")

// createIdentityProvider creates a provider and then stores its client
// secret; should the secret not be stored, the provider is removed again,
// so a create succeeds or fails whole.
func (s *Server) createIdentityProvider(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		sc, err := takeSecret(r, true)
		if err != nil {
			return err
		}
		if sc.set != "" && s.opts.Sealer == nil {
			return errNoSealer
		}
		k2 := k
		k2.view = func(res directory.Resource) any { return secretView(res.(*directory.IdentityProvider), sc.set != "") }
		buf := newResponseBuffer()
		if err := s.createObject(k2)(buf, r, c); err != nil {
			return err
		}
		if sc.set != "" {
			id, _ := c.details["id"].(string)
			if err := s.setProviderSecret(r.Context(), id, sc); err != nil {
				if _, derr := s.opts.Store.Update(context.WithoutCancel(r.Context()), func(ctx context.Context, tx store.Tx) error {
					return tx.Delete(ctx, directory.KindIdentityProvider, id)
				}); derr != nil {
					s.log.Error("create identity provider: cannot remove it after its secret failed", "requestId", c.requestID, "id", id, "err", derr)
				}
				c.revision = 0
				return err
			}
			c.details["clientSecret"] = "set"
		}
		buf.flush(w)
		return nil
	}
}

// updateIdentityProvider applies a PATCH, then the client secret change
// it carries ("clientSecret": a new secret, or null to remove it).
func (s *Server) updateIdentityProvider(k resourceKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := checkJSONContentType(r); err != nil {
			return err
		}
		sc, err := takeSecret(r, false)
		if err != nil {
			return err
		}
		if sc.set != "" && s.opts.Sealer == nil {
			return errNoSealer
		}
		buf := newResponseBuffer()
		if err := s.updateObject(k)(buf, r, c); err != nil {
			return err
		}
		if sc.any() {
			id, _ := c.details["id"].(string)
			if err := s.setProviderSecret(r.Context(), id, sc); err != nil {
				return &Problem{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable,
					Message: "the identity provider was updated, but its client secret was not; send clientSecret again", Target: "clientSecret", Err: err}
			}
			c.details["clientSecret"] = map[bool]string{true: "removed", false: "set"}[sc.remove]
		}
		buf.flush(w)
		return nil
	}
}

// setProviderSecret applies sc to the stored provider id.
func (s *Server) setProviderSecret(ctx context.Context, id string, sc secretChange) error {
	if sc.remove {
		return directory.RemoveIdentityProviderSecret(ctx, s.opts.Store, id)
	}
	obj, err := s.opts.Store.Get(ctx, directory.KindIdentityProvider, id)
	if err != nil {
		return err
	}
	p, err := directory.IdentityProviders.FromObject(obj)
	if err != nil {
		return err
	}
	return directory.SetIdentityProviderSecret(ctx, s.opts.Store, s.opts.Sealer, p, sc.set)
}

// deleteIdentityProvider deletes the provider, then its client secret
// (bound to the registration, a leftover would never be used).
func (s *Server) deleteIdentityProvider(del handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := del(w, r, c); err != nil {
			return err
		}
		if id, _ := c.details["id"].(string); id != "" {
			if err := directory.RemoveIdentityProviderSecret(r.Context(), s.opts.Store, id); err != nil {
				s.log.Warn("delete identity provider: cannot remove its client secret", "requestId", c.requestID, "id", id, "err", err)
			}
		}
		return nil
	}
}

// checkIdentityProvider enforces what a provider needs of the rest of the
// directory, inside the write transaction: its issuer is its own, the
// groups it maps to exist, and no other provider claims its domains.
func checkIdentityProvider(ctx context.Context, tx store.Reader, p *directory.IdentityProvider) error {
	if o, err := tx.GetByKey(ctx, directory.KindIdentityProvider, p.Key()); err == nil && o.ID != p.ID {
		return &Problem{Status: http.StatusConflict, Code: CodeConflict, Target: "issuer",
			Message: "identity provider " + o.ID + " already has this issuer; an issuer belongs to one identity provider"}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for i, m := range p.GroupMappings {
		if _, err := tx.Get(ctx, directory.KindGroup, m.GroupID); errors.Is(err, store.ErrNotFound) {
			return invalid(strictjson.Errorf(strictjson.Join(strictjson.Index("groupMappings", i), "groupId"), "no group with id %s", m.GroupID))
		} else if err != nil {
			return err
		}
	}
	if len(p.DomainHints) == 0 {
		return nil
	}
	others, err := tx.List(ctx, directory.KindIdentityProvider, store.ListOptions{})
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID == p.ID {
			continue
		}
		other, err := directory.IdentityProviders.FromObject(o)
		if err != nil {
			return err
		}
		for i, d := range p.DomainHints {
			if other.ServesDomain(d) {
				return &Problem{Status: http.StatusConflict, Code: CodeConflict, Target: strictjson.Index("domainHints", i),
					Message: "domain " + d + " is routed to identity provider " + strings.TrimSpace(other.DisplayName) + " (" + other.ID + ") already"}
			}
		}
	}
	return nil
}

// responseBuffer holds a handler's response until the caller decides to
// send it.
type responseBuffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newResponseBuffer() *responseBuffer { return &responseBuffer{header: http.Header{}} }

func (b *responseBuffer) Header() http.Header { return b.header }

func (b *responseBuffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// flush sends the held response to w.
func (b *responseBuffer) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
