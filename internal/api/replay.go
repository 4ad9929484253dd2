package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Replay limits.
const (
	defaultReplayWindow  = 7 * 24 * time.Hour
	maxReplayWindow      = 90 * 24 * time.Hour
	defaultReplaySignIns = 100_000
	maxReplaySignIns     = 1_000_000
	maxReplayChanges     = 1000
)

type replayRequest struct {
	// Policies are the candidate policies: one Graph conditionalAccessPolicy,
	// an array, or a Graph list {"value": [...]}. They replace the current
	// set for the replay.
	Policies json.RawMessage `json:"policies"`
	// Since is how far back to replay: "7d", "36h", "90m". Default 7d.
	Since string `json:"since,omitempty"`
	// MaxSignIns caps how many recorded sign-ins are replayed (newest first).
	MaxSignIns int `json:"maxSignIns,omitempty"`
}

type replayOutcomes struct {
	Block      int `json:"block"`
	Interrupt  int `json:"interrupt"`
	Grant      int `json:"grant"`
	NotApplied int `json:"notApplied"`
}

func (o *replayOutcomes) add(out access.Outcome) {
	switch out {
	case access.OutcomeBlock:
		o.Block++
	case access.OutcomeInterrupt:
		o.Interrupt++
	case access.OutcomeGrant:
		o.Grant++
	default:
		o.NotApplied++
	}
}

type replayChange struct {
	Time              string   `json:"time"`
	UserID            string   `json:"userId"`
	UserPrincipalName string   `json:"userPrincipalName,omitempty"`
	IPAddress         string   `json:"ipAddress,omitempty"`
	Current           string   `json:"current"`
	Candidate         string   `json:"candidate"`
	UnmetControls     []string `json:"unmetControls,omitempty"`
	Policies          []string `json:"policies,omitempty"` // candidate policies that apply
}

type replayUser struct {
	UserPrincipalName string `json:"userPrincipalName"`
	UserID            string `json:"userId"`
	SignIns           int    `json:"signIns"`
	Blocked           int    `json:"blocked"`
	Challenged        int    `json:"challenged"`
}

type replayResponse struct {
	From      string         `json:"from"`
	To        string         `json:"to"`
	SignIns   int            `json:"signIns"`
	Evaluated int            `json:"evaluated"`
	Skipped   int            `json:"skipped"` // users no longer in the directory
	Current   replayOutcomes `json:"current"`
	Candidate replayOutcomes `json:"candidate"`
	// Changed lists sign-ins whose outcome the candidate policies change
	// (newest first, at most 1000; ChangedTotal counts them all).
	Changed      []replayChange `json:"changed"`
	ChangedTotal int            `json:"changedTotal"`
	// Users are those the candidate policies would block or challenge,
	// most blocked first.
	Users []replayUser `json:"users"`
	Notes []string     `json:"notes,omitempty"`
}

// replay runs candidate conditional access policies over the sign-ins this
// deployment recorded and reports whom they would have blocked or
// challenged, next to what the current policies did. It is how an
// administrator changes policy without fear. Sign-ins are evaluated
// against today's directory (group memberships and roles as they are
// now), with the signals each sign-in recorded.
func (s *Server) replay(w http.ResponseWriter, r *http.Request, c *call) error {
	var req replayRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	window, err := parseWindow(req.Since)
	if err != nil {
		return invalid(strictjson.Errorf("since", "%s", err.Error()))
	}
	limit := defaultReplaySignIns
	if req.MaxSignIns != 0 {
		if req.MaxSignIns < 1 || req.MaxSignIns > maxReplaySignIns {
			return invalid(strictjson.Errorf("maxSignIns", "must be between 1 and %d", maxReplaySignIns))
		}
		limit = req.MaxSignIns
	}
	if len(req.Policies) == 0 {
		return invalid(strictjson.Errorf("policies", "required: the candidate policies"))
	}
	policies, notes, err := access.ParsePolicies(req.Policies)
	if err != nil {
		var fe *strictjson.FieldError
		if errors.As(err, &fe) {
			return invalid(strictjson.Errorf(underPolicies(fe.Path), "%s", fe.Message))
		}
		return invalid(err)
	}
	snap, current, err := s.accessEngine(r.Context())
	if err != nil {
		return err
	}
	dir := snap.Directory()
	candidate, err := access.Compile(policies, access.OptionsFor(dir))
	if err != nil {
		var fe *strictjson.FieldError
		if errors.As(err, &fe) {
			return invalid(strictjson.Errorf(underPolicies(fe.Path), "%s", fe.Message))
		}
		return invalid(err)
	}

	to := time.Now().UTC()
	from := to.Add(-window)
	resp := replayResponse{From: from.Format(time.RFC3339), To: to.Format(time.RFC3339), Changed: []replayChange{}, Users: []replayUser{}}
	for _, n := range notes {
		resp.Notes = append(resp.Notes, n.String())
	}
	users := map[string]*replayUser{}
	var curRes, candRes access.Result
	before := int64(0)
scan:
	for {
		events, err := s.opts.Store.ListAudit(r.Context(), store.AuditQuery{Action: "auth.login", BeforeSeq: before, Limit: store.MaxAuditLimit})
		if err != nil {
			return err
		}
		for _, ev := range events {
			if ev.Time.Before(from) || resp.SignIns >= limit {
				break scan
			}
			resp.SignIns++
			areq, upn, ok := s.signInRequest(ev, dir)
			if !ok {
				resp.Skipped++
				continue
			}
			resp.Evaluated++
			current.Evaluate(areq, &curRes)
			candidate.Evaluate(areq, &candRes)
			resp.Current.add(curRes.Outcome)
			resp.Candidate.add(candRes.Outcome)
			if candRes.Outcome == access.OutcomeBlock || candRes.Outcome == access.OutcomeInterrupt {
				u := users[areq.UserID]
				if u == nil {
					u = &replayUser{UserPrincipalName: upn, UserID: areq.UserID}
					users[areq.UserID] = u
				}
				u.SignIns++
				if candRes.Outcome == access.OutcomeBlock {
					u.Blocked++
				} else {
					u.Challenged++
				}
			}
			if curRes.Outcome != candRes.Outcome {
				resp.ChangedTotal++
				if len(resp.Changed) < maxReplayChanges {
					ch := replayChange{Time: ev.Time.UTC().Format(time.RFC3339), UserID: areq.UserID, UserPrincipalName: upn,
						Current: curRes.Outcome.String(), Candidate: candRes.Outcome.String(), UnmetControls: candRes.Unmet.Names()}
					if areq.IP.IsValid() {
						ch.IPAddress = areq.IP.String()
					}
					for i, pr := range candRes.Policies {
						if pr.Applies {
							ch.Policies = append(ch.Policies, candidate.Policies()[i].DisplayName)
						}
					}
					resp.Changed = append(resp.Changed, ch)
				}
			}
		}
		if len(events) < store.MaxAuditLimit {
			break
		}
		before = events[len(events)-1].Seq
	}
	for _, u := range users {
		resp.Users = append(resp.Users, *u)
	}
	slices.SortFunc(resp.Users, func(a, b replayUser) int {
		if a.Blocked != b.Blocked {
			return b.Blocked - a.Blocked
		}
		if a.Challenged != b.Challenged {
			return b.Challenged - a.Challenged
		}
		return strings.Compare(a.UserPrincipalName, b.UserPrincipalName)
	})
	c.details = map[string]any{"signIns": resp.SignIns, "changed": resp.ChangedTotal, "policies": len(policies)}
	return writeJSON(w, http.StatusOK, resp)
}

// signInRequest rebuilds the conditional access request of a recorded
// sign-in; ok is false when its user is no longer in the directory.
func (s *Server) signInRequest(ev store.AuditEvent, dir *directory.Snapshot) (*access.Request, string, bool) {
	u, ok := dir.User(ev.Actor)
	if ev.Actor == "" || !ok {
		return nil, "", false
	}
	var d struct {
		IPAddress     string `json:"ipAddress"`
		ClientAppType string `json:"clientAppType"`
		AppID         string `json:"appId"`
	}
	_ = json.Unmarshal(ev.Details, &d)
	app := d.AppID
	if app == "" {
		app = AdminAPIAppID
	}
	req := &access.Request{
		Identity: access.IdentityUser, UserID: u.ID, Applications: []string{app},
		ClientApp: access.ClientAppMobileAndDesktop, Platform: access.PlatformUnknown,
		Now: ev.Time, SignInTime: ev.Time,
	}
	if d.ClientAppType == "browser" {
		req.ClientApp = access.ClientAppBrowser
	}
	if ip, err := netip.ParseAddr(d.IPAddress); err == nil {
		req.IP = ip
		if s.opts.Geo != nil {
			req.Country, _ = s.opts.Geo.Country(ip)
		}
	}
	req.Resolve(access.SnapshotPrincipals{Snapshot: dir})
	return req, u.UserPrincipalName, true
}

// parseWindow reads "7d", "36h" or any Go duration; "" is 7 days.
func parseWindow(s string) (time.Duration, error) {
	if s == "" {
		return defaultReplayWindow, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("must be a duration such as 7d or 36h, not %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("must be a duration such as 7d or 36h, not %q", s)
		}
	}
	if d <= 0 || d > maxReplayWindow {
		return 0, fmt.Errorf("must be between 1s and 90d")
	}
	return d, nil
}

// underPolicies puts a path inside the request's "policies" property.
func underPolicies(path string) string {
	if strings.HasPrefix(path, "[") {
		return "policies" + path
	}
	return strictjson.Join("policies", path)
}
