package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
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
	if !ok || !strings.EqualFold(scheme, "Bearer") || !authn.LooksLikeToken(strings.TrimSpace(secret)) {
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "malformed Authorization header: want \"Bearer vrt_...\"")
	}
	tok, err := s.opts.Store.GetToken(r.Context(), authn.HashToken(strings.TrimSpace(secret)))
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "the token is invalid, expired or revoked; sign in again")
	}
	if err != nil {
		return err
	}
	c.principal = tok.PrincipalID
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
	err := snap.Authorize(c.principal, action, scope, &d)
	if err == nil && !d.Allowed {
		if newer := s.catchUp(ctx, snap); newer != snap {
			err = newer.Authorize(c.principal, action, scope, &d)
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
}

type loginResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	ExpiresAt   string `json:"expires_at"`
	PrincipalID string `json:"principalId"`
}

// dummyHash is verified against when the account does not exist, so the
// response time does not reveal which names exist.
var dummyHash = func() string {
	h, err := authn.HashPassword("timing-equaliser-not-a-credential")
	if err != nil {
		panic(err)
	}
	return h
}()

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
	if locked, until := s.lockout.Locked(name); locked {
		w.Header().Set("Retry-After", retryAfter(until))
		return problemf(http.StatusTooManyRequests, CodeTooManyRequests, "too many failed sign-ins; try again after %s", until.UTC().Format(time.RFC3339))
	}
	principal, hash, enabled, err := s.lookupPassword(r.Context(), name)
	if err != nil {
		return err
	}
	if principal == "" {
		_ = authn.VerifyPassword(dummyHash, req.Password)
		s.lockout.Fail(name)
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "invalid user name or password")
	}
	if authn.VerifyPassword(hash, req.Password) != nil {
		s.lockout.Fail(name)
		c.principal = principal
		return problemf(http.StatusUnauthorized, CodeUnauthenticated, "invalid user name or password")
	}
	c.principal = principal
	if !enabled {
		return problemf(http.StatusForbidden, CodeForbidden, "the account is disabled")
	}
	s.lockout.Succeed(name)
	secret, hashed := authn.NewToken()
	now := time.Now()
	ttl := s.opts.Auth.TokenTTL.D()
	if err := s.opts.Store.CreateToken(r.Context(), store.Token{Hash: hashed, PrincipalID: principal, CreatedAt: now, ExpiresAt: now.Add(ttl), Description: "login"}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, loginResponse{
		AccessToken: secret, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds()),
		ExpiresAt: now.Add(ttl).UTC().Format(time.RFC3339), PrincipalID: principal,
	})
}

// lookupPassword finds a user's id, password hash and enabled flag; an
// empty principal means no such user or no password set.
func (s *Server) lookupPassword(ctx context.Context, upn string) (principal, hash string, enabled bool, err error) {
	obj, err := s.opts.Store.GetByKey(ctx, "user", upn)
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	var u struct {
		AccountEnabled *bool `json:"accountEnabled"`
	}
	if err := json.Unmarshal(obj.Body, &u); err != nil {
		return "", "", false, err
	}
	cred, err := s.opts.Store.GetCredential(ctx, obj.ID, "password")
	if errors.Is(err, store.ErrNotFound) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	return obj.ID, cred.Hash, u.AccountEnabled == nil || *u.AccountEnabled, nil
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
