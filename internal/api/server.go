package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/geo"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Options wires a Server to the rest of the node. cmd builds it; nothing
// here reaches for globals.
type Options struct {
	Store    store.Store
	Live     *decision.Live
	Logger   *slog.Logger
	Registry *prometheus.Registry
	HTTP     config.HTTP
	Auth     config.Auth
	Version  string
	// Geo resolves the country of an IP for conditional access when a
	// request does not say; nil when no MMDB is configured.
	Geo *geo.DB
	// Ready reports whether the node should receive traffic; nil means
	// "when the store answers".
	Ready func(ctx context.Context) error
	// SignIn signs users in for POST /api/v1/login: the same lockout,
	// conditional access and sign-in log as the sign-in pages.
	SignIn *signin.Service
	// Sealer seals identity providers' client secrets (the keyring); nil
	// on a node without one, which then refuses to take a secret.
	Sealer directory.Sealer
	// PasswordPolicy applies to passwords an administrator sets (the
	// default policy when zero).
	PasswordPolicy authn.PasswordPolicy
	// AccessTokens, when set, lets callers present an OpenID Connect access
	// token issued to AccessTokenClient (the Verity CLI after `verity login
	// --web`) instead of an API token.
	AccessTokens      AccessTokenVerifier
	AccessTokenClient string
	// AuditLog signs checkpoints and serves proofs of the audit log; nil
	// on a node without it (those routes answer 404).
	AuditLog *audit.Log
	// AuditWitnesses are the verifier keys of the witnesses whose
	// co-signatures of checkpoints are kept.
	AuditWitnesses []string
}

// AccessTokenVerifier checks an access token for a client and returns its
// subject and the methods of the sign-in behind it. *oidc.Provider
// implements it.
type AccessTokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token, clientID string) (subject string, methods access.AuthMethod, err error)
}

// Server is the admin API of one node.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	routes  []Route
	mux     *http.ServeMux
}

// Perm is what a route demands of its caller: nothing (Public), a valid
// token (AuthOnly), or permission for Action at Scope from the RBAC
// engine. Scope may hold "{id}", replaced by the request's id when it is
// a GUID (so a role can be granted on one object) and dropped otherwise.
type Perm struct {
	Public   bool
	AuthOnly bool
	Action   string
	Scope    string
	// InHandler: the scope is the object's own (a role assignment's
	// scope), so the handler decides once it knows it.
	InHandler bool
}

var (
	// public routes need no token (sign-in itself, health).
	public = Perm{Public: true}
	// authenticated routes need a valid token and nothing more (who am I,
	// sign out).
	authenticated = Perm{AuthOnly: true}
)

// allow demands action at scope.
func allow(action, scope string) Perm { return Perm{Action: action, Scope: scope} }

// Route is one documented API operation.
type Route struct {
	Method  string
	Pattern string // Go ServeMux pattern without the method, e.g. /api/v1/users/{id}
	Name    string // audit action, e.g. "users.create"
	Perm    Perm
	// MaxBody overrides the configured body limit when > 0.
	MaxBody int64
	handler handlerFunc
}

// call carries per-request facts from the middleware to a handler and back
// to the audit record.
type call struct {
	route     *Route
	requestID string
	principal string
	// recorded: the change's audit event was written before it was made
	// (recordFirst).
	recorded bool
	// revision is set by handlers that wrote, so the response carries it
	// and the audit record names it.
	revision int64
	details  map[string]any
	// methods are those of the caller's sign-in behind its token (as its
	// amr or claims say); mfa: they prove a second factor.
	methods access.AuthMethod
	mfa     bool
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// New builds the API server and registers every route.
func New(opts Options) *Server {
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: newMetrics(opts.Registry),
		mux:     http.NewServeMux(),
	}
	s.registerRoutes()
	byPattern := map[string][]Route{}
	var patterns []string
	for _, rt := range s.routes {
		if _, ok := byPattern[rt.Pattern]; !ok {
			patterns = append(patterns, rt.Pattern)
		}
		byPattern[rt.Pattern] = append(byPattern[rt.Pattern], rt)
	}
	for _, p := range patterns {
		s.mux.Handle(p, s.dispatch(byPattern[p]))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, requestIDOf(r), problemf(http.StatusNotFound, CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Mount serves h at pattern behind the server's middleware (request ids,
// panic recovery, access log): the sign-in pages and the OIDC provider
// share the listener with the API.
func (s *Server) Mount(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Routes lists every registered operation (the OpenAPI test reads it).
func (s *Server) Routes() []Route { return slices.Clone(s.routes) }

func (s *Server) handle(method, pattern, name string, perm Perm, h handlerFunc) *Route {
	s.routes = append(s.routes, Route{Method: method, Pattern: pattern, Name: name, Perm: perm, handler: h})
	return &s.routes[len(s.routes)-1]
}

// Handler returns the whole HTTP surface with its middleware.
func (s *Server) Handler() http.Handler {
	return s.withRequestID(s.withRecover(s.withAccessLog(s.mux)))
}

// dispatch picks the route for the method, so a wrong method gets a JSON
// 405 with an Allow header rather than ServeMux's plain text.
func (s *Server) dispatch(routes []Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rt *Route
		for i := range routes {
			if routes[i].Method == r.Method || (r.Method == http.MethodHead && routes[i].Method == http.MethodGet) {
				rt = &routes[i]
				break
			}
		}
		if rt == nil {
			allow := make([]string, 0, len(routes))
			for _, x := range routes {
				allow = append(allow, x.Method)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeProblem(w, r, requestIDOf(r), problemf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		s.serveRoute(w, r, rt)
	})
}

func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt *Route) {
	start := time.Now()
	c := &call{route: rt, requestID: requestIDOf(r)}
	limit := s.opts.HTTP.MaxBodyBytes
	if rt.MaxBody > 0 {
		limit = rt.MaxBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	sw := &statusWriter{ResponseWriter: w}
	err := s.authorize(r, rt, c)
	var receipt *store.AuditReceipt
	if err == nil {
		if rt.Name != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
			// A change is recorded in its own transaction (store.AuditWith):
			// it is not made when its record cannot be.
			var ctx context.Context
			ctx, receipt = store.AuditWith(r.Context(), func(rev int64, changes []store.Change) store.AuditEvent {
				c.revision = rev
				return s.auditEvent(rt, c, 0, r, changes)
			})
			r = r.WithContext(ctx)
		}
		err = rt.handler(sw, r, c)
	}
	if err != nil {
		p := toProblem(err)
		if p.Status >= 500 && p.Code != CodeStoreUnavailable {
			s.log.Error("request failed", "requestId", c.requestID, "route", rt.Name, "err", p.Err)
		}
		s.writeProblem(sw, r, c.requestID, p)
	}
	s.metrics.requests.WithLabelValues(rt.Name, statusClass(sw.status)).Inc()
	s.metrics.duration.WithLabelValues(rt.Name).Observe(time.Since(start).Seconds())
	if rt.Name != "" && (receipt == nil || !receipt.Written) && !(c.recorded && err == nil) {
		s.audit(r.Context(), rt, c, sw.status, r)
	}
}

func statusClass(status int) string {
	return fmt.Sprintf("%dxx", status/100)
}

// writeJSON writes v with status and no caching.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}

func (s *Server) writeProblem(w http.ResponseWriter, r *http.Request, requestID string, p *Problem) {
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="verity"`)
	}
	if (p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	var details []detailItem
	for _, d := range p.Details {
		details = append(details, detailItem{Code: d.Code, Message: d.Message, Target: d.Target})
	}
	_ = writeJSON(w, p.Status, problemBody{Error: problemDetail{
		Code: p.Code, Message: p.Message, Target: p.Target, Details: details,
		InnerError: innerError{RequestID: requestID, Date: time.Now().UTC().Format(time.RFC3339)},
	}})
}

// decodeJSON reads the request body strictly into v.
func decodeJSON(r *http.Request, v any) error {
	if err := checkJSONContentType(r); err != nil {
		return err
	}
	if err := strictjson.Decode(r.Body, v); err != nil {
		return invalid(err)
	}
	return nil
}

type ctxKey int

const requestIDKey ctxKey = iota

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withRequestID gives every request an ID: the caller's X-Request-Id when
// it is safe to echo and log, otherwise a fresh UUID.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func (s *Server) withRecover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "requestId", requestIDOf(r), "path", r.URL.Path, "panic", fmt.Sprint(v))
				s.writeProblem(w, r, requestIDOf(r), problemf(http.StatusInternalServerError, CodeInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withAccessLog logs one line per request. It never logs headers, bodies or
// query strings, so no credential can reach the log.
func (s *Server) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			level = slog.LevelDebug
		}
		s.log.Log(r.Context(), level, "http request", "requestId", requestIDOf(r), "method", r.Method,
			"path", r.URL.Path, "status", sw.status, "bytes", sw.bytes, "durationMs", float64(time.Since(start).Microseconds())/1000,
			"remote", r.RemoteAddr)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
