package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// authorize authenticates the bearer token and asks the decision point
// whether the principal may use the route.
func (s *Server) authorize(r *http.Request, rt *Route, c *call) error {
	if rt.Perm.Public {
		return nil
	}
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "missing bearer token: sign in with POST /api/v1/login or `verity login`")
	}
	secret = strings.TrimSpace(secret)
	switch {
	case ok && strings.EqualFold(scheme, "Bearer") && authn.LooksLikeToken(secret):
		tok, err := s.opts.Store.GetToken(r.Context(), authn.HashToken(secret))
		if errors.Is(err, store.ErrNotFound) {
			return problemf(http.StatusUnauthorized, CodeUnauthenticated, "the token is invalid, expired or revoked; sign in again")
		}
		if err != nil {
			return err
		}
		c.principal, c.methods = tok.PrincipalID, signin.MethodsFromAMR(tok.AMR)
		c.mfa = slices.Contains(tok.AMR, "mfa")
	case ok && strings.EqualFold(scheme, "Bearer") && s.opts.AccessTokens != nil && strings.Count(secret, ".") == 2 && len(secret) <= 8192:
		sub, methods, err := s.opts.AccessTokens.VerifyAccessToken(r.Context(), secret, s.opts.AccessTokenClient)
		if err != nil {
			return problemf(http.StatusUnauthorized, CodeUnauthenticated, "the access token is invalid, expired or revoked; sign in again")
		}
		c.principal, c.methods, c.mfa = sub, methods, signin.Strength(methods) >= signin.StrengthMultifactor
	default:
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "malformed Authorization header: want \"Bearer vrt_...\" or a Verity access token")
	}
	snap := s.opts.Live.Current()
	if !snap.Directory().PrincipalEnabled(c.principal) {
		// The account may be newer than this node's snapshot: look again
		// once the snapshot has every committed write.
		if snap = s.catchUp(r.Context(), snap); !snap.Directory().PrincipalEnabled(c.principal) {
			return problemf(http.StatusForbidden, CodeForbidden, "the signed-in account is disabled or no longer exists")
		}
	}
	if rt.Perm.AuthOnly || rt.Perm.InHandler {
		return nil
	}
	return s.require(r.Context(), snap, c, rt.Perm.Action, scopeOf(r, rt.Perm.Scope))
}

// catchUp returns a snapshot with every write committed so far, or snap
// when that cannot be had quickly. Only refusals pay for it: a grant made
// a moment ago counts at once, on every node.
func (s *Server) catchUp(ctx context.Context, snap *decision.Snapshot) *decision.Snapshot {
	rev, err := s.opts.Store.Revision(ctx)
	if err != nil || rev <= snap.Revision() {
		return snap
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if fresh, err := s.opts.Live.WaitFor(ctx, rev); err == nil {
		return fresh
	}
	return snap
}

// require asks the RBAC engine whether the caller may perform action at
// scope; the answer and its reason go into the call's audit details.
func (s *Server) require(ctx context.Context, snap *decision.Snapshot, c *call, action, scope string) error {
	var d rbac.Decision
	now := time.Now()
	err := snap.Authorize(c.principal, action, scope, now, &d)
	if err == nil && !d.Allowed {
		if newer := s.catchUp(ctx, snap); newer != snap {
			err = newer.Authorize(c.principal, action, scope, now, &d)
		}
	}
	if err != nil {
		return &Problem{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Message: "authorisation is unavailable: the role assignments could not be compiled; see the node's log", Err: err}
	}
	if !d.Allowed {
		if c.details == nil {
			c.details = map[string]any{}
		}
		c.details["authorization"] = map[string]any{"action": action, "scope": scope, "reason": d.Reason.String()}
		return problemf(http.StatusForbidden, CodeForbidden, "%s at %s is not permitted: %s", action, scope, d.Reason)
	}
	return nil
}

// scopeOf fills a route's scope template from the request.
func scopeOf(r *http.Request, tmpl string) string {
	if !strings.Contains(tmpl, "{id}") {
		return tmpl
	}
	if id := r.PathValue("id"); directory.IsGUID(id) {
		return strings.Replace(tmpl, "{id}", strings.ToLower(id), 1)
	}
	return strings.TrimSuffix(tmpl, "/{id}")
}

type loginRequest struct {
	UserPrincipalName string `json:"userPrincipalName"`
	Password          string `json:"password"`
	// OTP is a code from the user's authenticator app, for sign-ins that
	// conditional access asks a second factor of.
	OTP string `json:"otp,omitempty"`
}

type loginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	ExpiresAt   string `json:"expires_at"`
	PrincipalID string `json:"principalId"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, c *call) error {
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	name := strings.ToLower(strings.TrimSpace(req.UserPrincipalName))
	c.details = signInDetails(r, name)
	if name == "" || req.Password == "" {
		return problemf(http.StatusBadRequest, CodeInvalidRequest, "userPrincipalName and password are required")
	}
	client := access.ClientAppMobileAndDesktop // the CLI and API clients
	if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
		client = access.ClientAppBrowser
	}
	res, err := s.opts.SignIn.SignInDirect(r.Context(), signin.Direct{UPN: name, Password: req.Password, OTP: req.OTP,
		AppID: AdminAPIAppID, ClientApp: client, IP: remoteAddr(r), UserAgent: r.UserAgent(), RequestID: c.requestID})
	if err != nil {
		return err
	}
	c.details["correlationId"] = res.Correlation
	c.principal = res.Account
	switch res.Code {
	case signin.CodeSuccess:
	case signin.CodeInvalidCredentials:
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "invalid user name or password")
	case signin.CodeLocked:
		w.Header().Set("Retry-After", retryAfter(res.LockedUntil))
		return problemf(http.StatusTooManyRequests, CodeTooManyRequests, "too many failed sign-ins; try again after %s", res.LockedUntil.UTC().Format(time.RFC3339))
	case signin.CodeDisabled:
		return problemf(http.StatusForbidden, CodeForbidden, "the account is disabled")
	case signin.CodeMFARequired:
		return problemf(http.StatusUnauthorized, CodeMFARequired, "%s (correlation id %s)", res.Reason, res.Correlation)
	case signin.CodeMFAFailed:
		return problemf(http.StatusUnauthorized, CodeMFAFailed, "%s", res.Reason)
	case signin.CodePasswordChange:
		return problemf(http.StatusForbidden, CodePasswordChangeRequired, "%s", res.Reason)
	default:
		return problemf(http.StatusForbidden, CodeConditionalAccess, "%s (correlation id %s)", res.Reason, res.Correlation)
	}
	c.principal = res.UserID
	secret, hashed := authn.NewToken()
	now := time.Now()
	ttl := s.opts.Auth.TokenTTL.D()
	amr := (&signin.Session{Methods: res.Methods}).AMR() // how the token's holder signed in
	if err := s.opts.Store.CreateToken(r.Context(), store.Token{Hash: hashed, PrincipalID: res.UserID, CreatedAt: now, ExpiresAt: now.Add(ttl),
		Description: "login", AMR: amr}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, loginResponse{
		AccessToken: secret, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds()),
		ExpiresAt: now.Add(ttl).UTC().Format(time.RFC3339), PrincipalID: res.UserID,
	})
}

// remoteAddr is the request's client: the TCP peer, or behind
// http.trustedProxies the address ForwardedFor found.
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func retryAfter(until time.Time) string {
	secs := int(time.Until(until).Seconds()) + 1
	if secs < 1 {
		secs = 1
	}
	return strconv.Itoa(secs)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *call) error {
	_, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if err := s.opts.Store.DeleteToken(r.Context(), authn.HashToken(strings.TrimSpace(secret))); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type meResponse struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName,omitempty"`
	Name        string `json:"userPrincipalName,omitempty"`
	Access      string `json:"adminAccess"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, c *call) error {
	snap := s.opts.Live.Current()
	resp := meResponse{ID: c.principal, Access: accessName(snap.AdminAccess(c.principal))}
	if u, ok := snap.Directory().User(c.principal); ok {
		resp.DisplayName, resp.Name = u.DisplayName, u.UserPrincipalName
	}
	return writeJSON(w, http.StatusOK, resp)
}

func accessName(l decision.AdminLevel) string {
	switch l {
	case decision.WriteAccess:
		return "Owner"
	case decision.ReadAccess:
		return "Reader"
	}
	return "None"
}

// AdminAPIAppID is the application id conditional access policies use to
// target Verity's own admin API (its sign-ins and, as they land, its
// requests). It is fixed, like Microsoft's first-party app ids.
const AdminAPIAppID = "1b4f2c6a-9d3e-4a7b-8c5f-0e2d6a9b3c71"

// signInDetails are the signals of a sign-in, recorded with its audit
// event so that candidate policies can be replayed over past sign-ins.
// The address is the TCP peer's: never a forwarded header, which nothing
// vouches for.
func signInDetails(r *http.Request, upn string) map[string]any {
	ip := r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	clientApp := "mobileAppsAndDesktopClients" // the CLI and API clients
	if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
		clientApp = "browser"
	}
	return map[string]any{"userPrincipalName": upn, "ipAddress": ip, "clientAppType": clientApp, "appId": AdminAPIAppID}
}
