package apply

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// IdentityProvider is a manifest's identity provider: the directory's,
// plus where its client secret comes from. A manifest file never holds
// the secret: ClientSecretFromEnv names an environment variable that
// ParseFiles reads on the machine running `verity apply`, which sends the
// value to the server as ClientSecret (over the API's TLS, like any
// request). The server seals it; exports never carry it. Without either,
// the provider's secret is left as it is.
type IdentityProvider struct {
	directory.IdentityProvider
	// ClientSecret is the secret itself: in an API request, never in a
	// file. "****" (as reads show it) leaves the secret as it is.
	ClientSecret string `json:"clientSecret,omitempty"`
	// ClientSecretFromEnv names the environment variable that holds the
	// secret, in a manifest file.
	ClientSecretFromEnv string `json:"clientSecretFromEnv,omitempty"`
}

// decodeIdentityProvider decodes a manifest file's identity provider and
// resolves clientSecretFromEnv with lookup; a literal clientSecret is an
// error, so that secrets stay out of files (and version control).
func decodeIdentityProvider(data json.RawMessage, lookup func(string) (string, bool)) (IdentityProvider, error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil || top == nil {
		_, err := directory.IdentityProviders.Decode(data) // explains what is wrong
		if err == nil {
			err = strictjson.Errorf("", "must be an object")
		}
		return IdentityProvider{}, err
	}
	var out IdentityProvider
	if raw, ok := top["clientSecret"]; ok {
		if string(raw) != "null" && string(raw) != `"`+directory.ClientSecretPlaceholder+`"` {
			return out, strictjson.Errorf("clientSecret", "a secret does not belong in a manifest file; put it in an environment variable and name that with clientSecretFromEnv")
		}
		delete(top, "clientSecret")
	}
	if raw, ok := top["clientSecretFromEnv"]; ok {
		delete(top, "clientSecretFromEnv")
		var name string
		if err := json.Unmarshal(raw, &name); err != nil || !validEnvName(name) {
			return out, strictjson.Errorf("clientSecretFromEnv", "must name an environment variable, such as CONTOSO_OIDC_CLIENT_SECRET")
		}
		v, ok := lookup(name)
		if !ok || v == "" {
			return out, strictjson.Errorf("clientSecretFromEnv", "environment variable %s is not set", name)
		}
		if err := directory.CheckClientSecret("clientSecretFromEnv", v); err != nil {
			var fe *strictjson.FieldError
			if errors.As(err, &fe) {
				return out, strictjson.Errorf("clientSecretFromEnv", "environment variable %s %s", name, fe.Message)
			}
			return out, err
		}
		out.ClientSecret = v
	}
	rest, err := json.Marshal(top)
	if err != nil {
		return out, fmt.Errorf("decode identity provider: %w", err)
	}
	p, err := directory.IdentityProviders.Decode(rest)
	if err != nil {
		return out, err
	}
	out.IdentityProvider = *p
	return out, nil
}

// validEnvName accepts POSIX environment variable names.
func validEnvName(s string) bool {
	if s == "" || len(s) > 256 || ('0' <= s[0] && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// pendingSecret is a client secret Apply stores after the commit, bound
// to the provider as the plan writes it.
type pendingSecret struct {
	provider directory.IdentityProvider
	secret   string
}

// checkIdentityProviders checks the identity providers of the resulting
// directory: client secrets (a server-side manifest carries the value and
// needs a keyring; an unchanged one is no change), mapped groups exist,
// and no domain is routed to two providers.
func (p *planner) checkIdentityProviders() error {
	const kind = directory.KindIdentityProvider
	for _, it := range p.items[kind] {
		e := p.m.IdentityProviders[it.index]
		if e.ClientSecretFromEnv != "" {
			p.failf(it.section, it.index, "clientSecretFromEnv", "is read by verity apply on the machine it runs on; the server takes the value as clientSecret")
			continue
		}
		if e.ClientSecret == "" || e.ClientSecret == directory.ClientSecretPlaceholder {
			continue
		}
		if err := directory.CheckClientSecret("clientSecret", e.ClientSecret); err != nil {
			p.fail(it.section, it.index, "", err)
			continue
		}
		if p.opts.Sealer == nil {
			p.failf(it.section, it.index, "clientSecret", "this server has no keyring to seal client secrets with")
			continue
		}
		same, err := p.sameSecret(it, e.ClientSecret)
		if err != nil {
			return err
		}
		if !same {
			it.secret = e.ClientSecret
		}
	}

	isGroup := func(id string) bool { pr, ok := p.principals[id]; return ok && pr.kind == directory.KindGroup }
	domains := map[string]string{} // domain → the provider that claims it
	claim := func(prov *directory.IdentityProvider, report func(path, msg string)) {
		for i, m := range prov.GroupMappings {
			if !isGroup(m.GroupID) {
				report(strictjson.Join(strictjson.Index("groupMappings", i), "groupId"), fmt.Sprintf("no group with id %s in the manifest or the directory, or pruning deletes it", m.GroupID))
			}
		}
		for i, d := range prov.DomainHints {
			if other, taken := domains[d]; taken {
				report(strictjson.Index("domainHints", i), fmt.Sprintf("domain %s is routed to identity provider %q too", d, other))
				continue
			}
			domains[d] = prov.DisplayName
		}
	}
	for i := range p.stored[kind] {
		o := &p.stored[kind][i]
		if p.matched[kid{kind, o.ID}] || p.pruned[kid{kind, o.ID}] != nil {
			continue
		}
		prov, err := directory.IdentityProviders.FromObject(*o)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		claim(prov, func(path, msg string) {
			p.errs.add(&Error{Message: fmt.Sprintf("identity provider %q (%s), which the manifest does not list: %s: %s", prov.DisplayName, o.ID, path, msg)})
		})
	}
	for _, it := range p.items[kind] {
		claim(it.res.(*directory.IdentityProvider), func(path, msg string) { p.failf(it.section, it.index, path, "%s", msg) })
	}
	return nil
}

// sameSecret reports whether secret is the stored provider's current
// client secret (false when the plan cannot read it).
func (p *planner) sameSecret(it *item, secret string) (bool, error) {
	if it.existing == nil || p.records == nil {
		return false, nil
	}
	cur, err := directory.IdentityProviders.FromObject(*it.existing)
	if err != nil {
		return false, fmt.Errorf("apply: %w", err)
	}
	got, err := directory.IdentityProviderSecret(p.ctx, p.records, p.opts.Sealer, cur)
	switch {
	case errors.Is(err, directory.ErrNoClientSecret):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("apply: read the client secret of identity provider %q: %w", cur.DisplayName, err)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1, nil
}

// keepSecret records the item's client secret for Apply, bound to the provider
// as the plan writes it (its createdDateTime set).
func (p *planner) keepSecret(it *item) {
	if it.secret == "" {
		return
	}
	prov := *it.res.(*directory.IdentityProvider)
	p.secrets = append(p.secrets, pendingSecret{provider: prov, secret: it.secret})
}

// storeSecrets seals and stores the plan's client secrets and removes the
// secrets of the providers it deleted.
func (p *Plan) storeSecrets(ctx context.Context, st store.Store, sealer directory.Sealer) error {
	for _, s := range p.secrets {
		prov := s.provider
		if err := directory.SetIdentityProviderSecret(ctx, st, sealer, &prov, s.secret); err != nil {
			return fmt.Errorf("the client secret of identity provider %q was not stored (apply again): %w", prov.DisplayName, err)
		}
	}
	var errs []error
	for _, id := range p.removedProviders {
		errs = append(errs, directory.RemoveIdentityProviderSecret(ctx, st, id))
	}
	return errors.Join(errs...)
}

// exportIdentityProviders adds the stored identity providers to m, sorted
// by issuer, without secrets (which live in records).
func exportIdentityProviders(m *Manifest, res []directory.Resource) {
	for _, v := range res {
		m.IdentityProviders = append(m.IdentityProviders, IdentityProvider{IdentityProvider: *v.(*directory.IdentityProvider)})
	}
	slices.SortFunc(m.IdentityProviders, func(a, b IdentityProvider) int {
		return cmp.Or(cmp.Compare(a.Issuer, b.Issuer), cmp.Compare(a.ID, b.ID))
	})
}
