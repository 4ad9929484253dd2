package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/keyring"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// Paths the provider serves. The issuer is the node's external URL, so
// discovery is at its root; everything else is under /oauth2/, apart from
// the admin API (/api) and the sign-in pages (/signin).
const (
	pathDiscovery  = "/.well-known/openid-configuration"
	pathAuthorize  = "/oauth2/authorize"
	pathCallback   = pathAuthorize + "/callback" // where the library expects the login to return
	pathLogin      = "/oauth2/login"
	pathToken      = "/oauth2/token"
	pathIntrospect = "/oauth2/introspect"
	pathUserinfo   = "/oauth2/userinfo"
	pathRevoke     = "/oauth2/revoke"
	pathEndSession = "/oauth2/end_session"
	pathKeys       = "/oauth2/keys"
)

// Defaults of Options.
const (
	DefaultIDTokenLifetime         = time.Hour
	DefaultAccessTokenLifetime     = time.Hour
	DefaultRefreshTokenLifetime    = 30 * 24 * time.Hour
	DefaultRefreshTokenMaxLifetime = 90 * 24 * time.Hour
	DefaultCodeLifetime            = 60 * time.Second
	// authRequestLifetime bounds the time from /authorize to the code:
	// the sign-in pages' own attempts last ten minutes.
	authRequestLifetime = 15 * time.Minute
	// maxBody bounds the form of a token, introspection or revocation
	// request.
	maxBody = 64 << 10
)

// Options configure a Provider.
type Options struct {
	// Issuer is the node's external URL (https, no query or fragment), as
	// relying parties configure it; a trailing slash is dropped.
	Issuer  string
	Store   store.Store
	Live    *decision.Live
	Keyring *keyring.Keyring
	SignIn  *signin.Service
	// Countries is optional: conditional access on refresh and for
	// workload identities sees no country without it.
	Countries signin.Countries
	Logger    *slog.Logger
	// Now is the clock (time.Now when nil). It governs codes, refresh
	// tokens and grants; the iat and exp of JWTs come from the library,
	// which reads the wall clock.
	Now func() time.Time

	// IDTokenLifetime and AccessTokenLifetime default to an hour.
	IDTokenLifetime     time.Duration
	AccessTokenLifetime time.Duration
	// RefreshTokenLifetime is how long a refresh token lasts unused (30
	// days): each use returns a new one with a new lifetime, up to
	// RefreshTokenMaxLifetime (90 days) after the sign-in.
	RefreshTokenLifetime    time.Duration
	RefreshTokenMaxLifetime time.Duration
	// CodeLifetime is how long an authorization code can be redeemed (60
	// seconds).
	CodeLifetime time.Duration
}

// Validate checks the options and fills the defaults.
func (o *Options) Validate() error {
	o.Issuer = strings.TrimSuffix(o.Issuer, "/")
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("oidc: issuer must be an https URL without query or fragment, such as https://verity.contoso.com, not %q", o.Issuer)
	}
	if o.Store == nil || o.Live == nil || o.Keyring == nil || o.SignIn == nil {
		return errors.New("oidc: store, live snapshot, keyring and sign-in service are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&o.IDTokenLifetime, DefaultIDTokenLifetime}, {&o.AccessTokenLifetime, DefaultAccessTokenLifetime},
		{&o.RefreshTokenLifetime, DefaultRefreshTokenLifetime}, {&o.RefreshTokenMaxLifetime, DefaultRefreshTokenMaxLifetime},
		{&o.CodeLifetime, DefaultCodeLifetime},
	} {
		if *d.v < 0 {
			return errors.New("oidc: token lifetimes must not be negative")
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.RefreshTokenLifetime > o.RefreshTokenMaxLifetime {
		return fmt.Errorf("oidc: refreshTokenLifetime (%s) must not exceed refreshTokenMaxLifetime (%s)", o.RefreshTokenLifetime, o.RefreshTokenMaxLifetime)
	}
	return nil
}

// Provider is Verity's OpenID Connect provider. It is safe for concurrent
// use; all its state is in the store.
type Provider struct {
	opts    Options
	log     *slog.Logger
	secrets secretCache
	op      *op.Provider
	auth    authorizer
	handler http.Handler
}

// Verity exports no traces. Without a tracer provider, zitadel's op
// package would make a span per step through OpenTelemetry's global
// delegate — 5 % of a client credentials grant's allocations.
func init() { op.Tracer = noop.NewTracerProvider().Tracer("") }

// New returns a Provider.
func New(opts Options) (*Provider, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{opts: opts, log: opts.Logger}
	algs := []string{string(keyring.ES256), string(keyring.EdDSA)}
	ks := keySet{opts.Keyring}
	config := &op.Config{
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess},
		SupportedClaims:          supportedClaims,
		DefaultLogoutRedirectURI: "/signin",
	}
	var err error
	p.op, err = op.NewProvider(config, &storage{p}, op.StaticIssuer(opts.Issuer),
		op.WithCustomEndpoints(op.NewEndpoint(pathAuthorize), op.NewEndpoint(pathToken), op.NewEndpoint(pathUserinfo),
			op.NewEndpoint(pathRevoke), op.NewEndpoint(pathEndSession), op.NewEndpoint(pathKeys)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(pathIntrospect)),
		op.WithCrypto(codeCrypto{}),
		op.WithAccessTokenKeySet(ks),
		op.WithIDTokenHintKeySet(ks),
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(algs...)),
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(algs...)),
	)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	p.auth = authorizer{Provider: p.op, p: p}
	p.handler = op.NewIssuerInterceptor(p.op.IssuerFromRequest).Handler(p.routes())
	return p, nil
}

var supportedClaims = []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "sid",
	"azp", "at_hash", "c_hash", "name", "preferred_username", "email"}

// Handler serves discovery at /.well-known/openid-configuration and the
// endpoints under /oauth2/. Mount it for exactly those two prefixes.
func (p *Provider) Handler() http.Handler { return p.handler }

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(pathDiscovery, cors(methods(p.discovery, http.MethodGet)))
	mux.HandleFunc(pathKeys, cors(methods(p.keys, http.MethodGet)))
	mux.HandleFunc(pathAuthorize, methods(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), flowKey{}, &flowHint{})
		op.Authorize(w, r.WithContext(ctx), p.auth)
	}, http.MethodGet, http.MethodPost))
	mux.HandleFunc(pathLogin, methods(p.login, http.MethodGet))
	mux.HandleFunc(pathCallback, methods(func(w http.ResponseWriter, r *http.Request) {
		op.AuthorizeCallback(w, r, p.op)
	}, http.MethodGet))
	mux.HandleFunc(pathToken, cors(methods(p.token, http.MethodPost)))
	mux.HandleFunc(pathIntrospect, methods(p.introspect, http.MethodPost))
	mux.HandleFunc(pathUserinfo, cors(methods(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		op.Userinfo(w, r.WithContext(withRequestInfo(r)), p.op)
	}, http.MethodGet, http.MethodPost)))
	mux.HandleFunc(pathRevoke, cors(methods(p.revoke, http.MethodPost)))
	mux.HandleFunc(pathEndSession, methods(p.endSession, http.MethodGet, http.MethodPost))
	mux.HandleFunc("/oauth2/", func(w http.ResponseWriter, r *http.Request) {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("there is no OAuth endpoint at this address"), nil)
	})
	return mux
}

// methods answers 405 with Allow to any other method than those listed.
func methods(h http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m || (r.Method == http.MethodHead && m == http.MethodGet) {
				if r.Method == http.MethodPost {
					r.Body = http.MaxBytesReader(w, r.Body, maxBody)
				}
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// cors lets browser applications (spa clients) call the endpoints that
// take no cookies: any origin, never with credentials.
func cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h(w, r)
	}
}

// discovery serves the provider metadata: the library's, narrowed to what
// Verity does (the code flow, S256 PKCE, secrets in the header or body).
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	c := op.CreateDiscoveryConfig(r.Context(), p.op, p.op.Storage())
	c.DeviceAuthorizationEndpoint = ""
	c.CheckSessionIframe = ""
	c.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	c.ResponseModesSupported = []string{"query", "fragment", "form_post"}
	c.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeClientCredentials}
	c.TokenEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	c.TokenEndpointAuthSigningAlgValuesSupported = nil
	c.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic}
	c.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	c.RevocationEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone}
	c.RevocationEndpointAuthSigningAlgValuesSupported = nil
	c.RequestObjectSigningAlgValuesSupported = nil
	c.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	c.ACRValuesSupported = []string{signin.ACRPassword, signin.ACRMultifactor, signin.ACRPhishingResistant}
	c.SubjectTypesSupported = []string{"public"}
	w.Header().Set("Cache-Control", "public, max-age=300")
	op.Discover(w, c)
}

// keys serves the keyring's JWKS: the current key, the next one and
// retired ones still within their retention, so rotation needs nothing
// from relying parties beyond refetching it.
func (p *Provider) keys(w http.ResponseWriter, r *http.Request) {
	b, err := p.opts.Keyring.JWKSJSON(r.Context())
	if err != nil {
		p.log.ErrorContext(r.Context(), "oidc: read signing keys", "err", err)
		http.Error(w, "signing keys unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(b)
}

// token runs the library's token endpoint for the grants Verity offers,
// after learning from the code or refresh token whether its flow is a
// public client's (which decides whether a secret is required).
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err := r.ParseForm(); err != nil {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("cannot parse the form"), nil)
		return
	}
	ctx := withRequestInfo(r)
	hint := &flowHint{}
	switch oidc.GrantType(r.PostForm.Get("grant_type")) {
	case oidc.GrantTypeCode:
		if code := r.PostForm.Get("code"); validSecret(code, codePrefix) {
			if rec, err := p.opts.Store.GetRecord(ctx, kindCode, digest(code)); err == nil {
				if c, err := decode[codeRecord](rec); err == nil {
					hint.known, hint.public = true, c.Request.Public
				}
			}
		}
	case oidc.GrantTypeRefreshToken:
		hint.known, hint.public = p.refreshHint(ctx, r.PostForm.Get("refresh_token"))
	case oidc.GrantTypeClientCredentials:
		hint.known = true
	default:
		op.RequestError(w, r, oidc.ErrUnsupportedGrantType().WithDescription("the grant types are authorization_code, refresh_token and client_credentials"), nil)
		return
	}
	op.Exchange(w, r.WithContext(context.WithValue(ctx, flowKey{}, hint)), p.op)
}

// refreshHint says whether the refresh token token belongs to a public
// client's flow; known is false when it is not a live refresh token.
func (p *Provider) refreshHint(ctx context.Context, token string) (known, public bool) {
	if !validSecret(token, refreshPrefix) {
		return false, false
	}
	rec, err := p.opts.Store.GetRecord(ctx, kindRefreshToken, digest(token))
	if err != nil {
		return false, false
	}
	b, err := decode[refreshRecord](rec)
	if err != nil {
		return false, false
	}
	return true, b.Public
}

// revoke is RFC 7009 revocation through the library, with the flow of a
// refresh token told first (a public client revokes with its id alone).
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := r.ParseForm(); err != nil {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("cannot parse the form"), nil)
		return
	}
	ctx := withRequestInfo(r)
	hint := &flowHint{}
	hint.known, hint.public = p.refreshHint(ctx, r.PostForm.Get("token"))
	op.Revoke(w, r.WithContext(context.WithValue(ctx, flowKey{}, hint)), p.op)
}

// endSession is RP-initiated logout: the id_token_hint is required and
// verified, a post_logout_redirect_uri must be registered exactly (the web
// logoutUrl or a redirect URI), and the browser's session ends when it is
// the hint's user's.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	req, err := op.ParseEndSessionRequest(r, p.op.Decoder())
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	if req.IdTokenHint == "" {
		op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("id_token_hint is required"), nil)
		return
	}
	es, err := op.ValidateEndSessionRequest(r.Context(), req, p.op)
	if err != nil {
		op.RequestError(w, r, err, nil)
		return
	}
	if req.PostLogoutRedirectURI != "" {
		c, err := p.client(r.Context(), es.ClientID)
		if err != nil || !containsExact(c.PostLogoutRedirectURIs(), req.PostLogoutRedirectURI) {
			op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("post_logout_redirect_uri is not registered for this application"), nil)
			return
		}
	}
	sess, err := p.opts.SignIn.Current(r)
	if err != nil {
		op.RequestError(w, r, oidc.ErrServerError().WithParent(err), nil)
		return
	}
	if sess != nil && sess.UserID == es.UserID {
		if err := p.opts.SignIn.SignOut(w, r); err != nil {
			op.RequestError(w, r, oidc.ErrServerError().WithParent(err), nil)
			return
		}
		p.log.InfoContext(r.Context(), "oidc: signed out", "client", es.ClientID, "user", es.UserID, "session", sess.ID)
	}
	http.Redirect(w, r, es.RedirectURI, http.StatusFound)
}

func containsExact(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// requestInfoKey carries the client's address and user agent, which
// conditional access on token requests sees.
type requestInfoKey struct{}

type requestInfo struct {
	IP        netip.Addr
	UserAgent string
	// clients memoizes Provider.client within the request: the library
	// asks for the client more than once per request, and each lookup
	// reads the application's secrets from the store.
	clients *clientMemo
}

type clientMemo struct {
	mu sync.Mutex
	m  map[string]*client
}

func withRequestInfo(r *http.Request) context.Context {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return context.WithValue(r.Context(), requestInfoKey{}, requestInfo{IP: ip.Unmap(), UserAgent: r.UserAgent(), clients: &clientMemo{}})
}

func infoFrom(ctx context.Context) requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(requestInfo)
	return ri
}

// codeCrypto gives the library random authorization codes. The library
// would otherwise encrypt the auth request id into the code; Verity keeps
// the code's SHA-256 instead, so a code says nothing and the database
// holds nothing that redeems. Access tokens are JWTs, never encrypted
// strings, so Decrypt always fails.
type codeCrypto struct{}

func (codeCrypto) Encrypt(string) (string, error) { return newSecret(codePrefix), nil }
func (codeCrypto) Decrypt(string) (string, error) {
	return "", errors.New("verity issues no encrypted tokens")
}

// keySet verifies the JWTs the library checks (access tokens, ID token
// hints) against the keyring's published keys: the kid must be published
// and the alg must be that key's.
type keySet struct{ k *keyring.Keyring }

func (s keySet) VerifySignature(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a token must carry exactly one signature")
	}
	h := jws.Signatures[0].Protected
	set, err := s.k.JWKS(ctx)
	if err != nil {
		return nil, err
	}
	for _, key := range set.Keys {
		if key.KeyID != h.KeyID || h.KeyID == "" {
			continue
		}
		if h.Algorithm != key.Algorithm {
			return nil, fmt.Errorf("alg %q is not the key's %s", h.Algorithm, key.Algorithm)
		}
		return jws.Verify(key.Key)
	}
	return nil, errors.New("kid is not a published key")
}
