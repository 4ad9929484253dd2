package detect

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Alert is what a detector raises: what it saw, about which entity, with
// the records that show it.
type Alert struct {
	Detector string `json:"detector"`
	// Key identifies the alert: the same attack seen again (a replay after
	// a restart) gives the same key, and raises nothing new.
	Key      string     `json:"key"`
	MITRE    []string   `json:"mitreTechniques"` // ATT&CK technique ids
	Severity string     `json:"severity"`        // low, medium, high
	User     string     `json:"userPrincipalName,omitempty"`
	UserID   string     `json:"userId,omitempty"`
	IP       netip.Addr `json:"ipAddress,omitzero"`
	// AppID is the application concerned (a service principal's sign-in,
	// a credential added to an application), for responses that act on
	// it.
	AppID    string    `json:"appId,omitempty"`
	First    time.Time `json:"firstActivityDateTime"`
	Last     time.Time `json:"lastActivityDateTime"`
	Evidence []string  `json:"evidence"` // ids of the sign-in records
	Summary  string    `json:"summary"`
}

// A Detector watches sign-ins in time order and raises alerts.
type Detector interface {
	Name() string
	Observe(s *SignIn, raise func(Alert))
}

// Entra error codes the detectors read.
const (
	codeWrongPassword = 50126
	codeDisabled      = 50057
	codeLocked        = 50053
	codeMFADenied     = 500121
)

// failedCredential reports whether a sign-in failed on its credentials
// (the failures a password spray or brute force makes).
func failedCredential(s *SignIn) bool {
	switch s.Code {
	case codeWrongPassword, codeLocked, 50055, 50056, 50064, 50034:
		return true
	}
	return false
}

// window keeps timed items for a sliding window.
type window[T any] struct {
	items []timed[T]
}

type timed[T any] struct {
	at time.Time
	v  T
}

func (w *window[T]) add(at time.Time, v T, span time.Duration) {
	w.items = append(w.items, timed[T]{at, v})
	cut := 0
	for cut < len(w.items) && at.Sub(w.items[cut].at) > span {
		cut++
	}
	w.items = w.items[cut:]
}

// stale reports whether nothing in w is within span of now.
func (w *window[T]) stale(now time.Time, span time.Duration) bool {
	return len(w.items) == 0 || now.Sub(w.items[len(w.items)-1].at) > span
}

// sweeper drops, every sixteenth of the window (of event time, at least a
// minute), the per-entity state that has fallen out of its window, so
// that memory follows the entities active within the window, not every
// one ever seen, and a sweep's cost is spread over a window's events.
type sweeper struct{ last time.Time }

func (sw *sweeper) due(now time.Time, window time.Duration) bool {
	if now.Sub(sw.last) < max(window/16, time.Minute) {
		return false
	}
	sw.last = now
	return true
}

func sweepWindows[K comparable, T any](m map[K]*window[T], now time.Time, span time.Duration) {
	for k, w := range m {
		if w.stale(now, span) {
			delete(m, k)
		}
	}
}

func sweepRaised[K comparable](m map[K]time.Time, now time.Time, span time.Duration) {
	for k, t := range m {
		if now.Sub(t) > span {
			delete(m, k)
		}
	}
}

// PasswordSpray: one address failing the credentials of many accounts in
// a short time (ATT&CK T1110.003). Default: 5 distinct accounts in 20
// minutes.
type PasswordSpray struct {
	Accounts int           `json:"accounts"`
	Window   time.Duration `json:"window"`
	byIP     map[netip.Addr]*window[*SignIn]
	raised   map[netip.Addr]time.Time
	sweep    sweeper
}

func (d *PasswordSpray) Name() string { return "passwordSpray" }

func (d *PasswordSpray) Observe(s *SignIn, raise func(Alert)) {
	if d.byIP != nil && d.sweep.due(s.Time, d.Window) {
		sweepWindows(d.byIP, s.Time, d.Window)
		sweepRaised(d.raised, s.Time, d.Window)
	}
	if !failedCredential(s) || !s.IP.IsValid() || s.User == "" {
		return
	}
	if d.byIP == nil {
		d.byIP, d.raised = map[netip.Addr]*window[*SignIn]{}, map[netip.Addr]time.Time{}
	}
	w := d.byIP[s.IP]
	if w == nil {
		w = &window[*SignIn]{}
		d.byIP[s.IP] = w
	}
	w.add(s.Time, s, d.Window)
	users := map[string]bool{}
	var evidence []string
	for _, it := range w.items {
		users[it.v.User] = true
		evidence = append(evidence, it.v.ID)
	}
	if len(users) < d.Accounts {
		return
	}
	if last, ok := d.raised[s.IP]; ok && s.Time.Sub(last) < d.Window {
		return // the same spray, raised already
	}
	d.raised[s.IP] = s.Time
	first := w.items[0].at
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), s.IP, first.Unix()), MITRE: []string{"T1110.003"},
		Severity: "medium", IP: s.IP, First: first, Last: s.Time, Evidence: evidence,
		Summary: fmt.Sprintf("%s failed the passwords of %d accounts within %v", s.IP, len(users), d.Window)})
}

// BruteForce: many failed credentials for one account, then a success
// (ATT&CK T1110.001). Default: 10 failures in 20 minutes before it.
type BruteForce struct {
	Failures int           `json:"failures"`
	Window   time.Duration `json:"window"`
	byUser   map[string]*window[*SignIn]
	sweep    sweeper
}

func (d *BruteForce) Name() string { return "bruteForce" }

func (d *BruteForce) Observe(s *SignIn, raise func(Alert)) {
	if d.byUser != nil && d.sweep.due(s.Time, d.Window) {
		sweepWindows(d.byUser, s.Time, d.Window)
	}
	if s.User == "" {
		return
	}
	if d.byUser == nil {
		d.byUser = map[string]*window[*SignIn]{}
	}
	w := d.byUser[s.User]
	if w == nil {
		w = &window[*SignIn]{}
		d.byUser[s.User] = w
	}
	if failedCredential(s) {
		w.add(s.Time, s, d.Window)
		return
	}
	if !s.Success {
		return
	}
	w.add(s.Time, nil, d.Window) // drops what is too old
	var evidence []string
	for _, it := range w.items {
		if it.v != nil {
			evidence = append(evidence, it.v.ID)
		}
	}
	delete(d.byUser, s.User) // a success starts the count again
	if len(evidence) < d.Failures {
		return
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), s.User, s.Time.Unix()), MITRE: []string{"T1110.001"},
		Severity: "high", User: s.User, UserID: s.UserID, IP: s.IP, First: s.Time, Last: s.Time, Evidence: append(evidence, s.ID),
		Summary: fmt.Sprintf("%d failed passwords for %s, then a successful sign-in", len(evidence), s.User)})
}

// DisabledAccountIP: an address that tries accounts that are disabled and
// signs in successfully to others — someone holding a list of old
// credentials (after Sentinel's SigninAttemptsByIPviaDisabledAccounts;
// ATT&CK T1078, T1098). It fires when, within the window, the disabled
// accounts tried are at least Ratio of the accounts signed in to, and
// fewer than MaxSuccessful accounts were (a shared gateway signs in many).
// Defaults: 14 days, 0.5, 50.
type DisabledAccountIP struct {
	Window        time.Duration `json:"window"`
	Ratio         float64       `json:"ratio"`
	MaxSuccessful int           `json:"maxSuccessful"`
	byIP          map[netip.Addr]*disabledIP
	raised        map[netip.Addr]time.Time
	sweep         sweeper
}

type disabledIP struct {
	disabled window[*SignIn]      // attempts at disabled accounts (rare): the evidence
	success  map[string]time.Time // accounts signed in to, with the last time
}

func (d *DisabledAccountIP) Name() string { return "disabledAccountIP" }

func (d *DisabledAccountIP) Observe(s *SignIn, raise func(Alert)) {
	if d.byIP != nil && d.sweep.due(s.Time, d.Window) {
		for ip, st := range d.byIP {
			for u, at := range st.success {
				if s.Time.Sub(at) > d.Window {
					delete(st.success, u)
				}
			}
			if st.disabled.stale(s.Time, d.Window) && len(st.success) == 0 {
				delete(d.byIP, ip)
			}
		}
		sweepRaised(d.raised, s.Time, d.Window)
	}
	if !s.IP.IsValid() || s.User == "" || (s.Code != codeDisabled && !s.Success) {
		return
	}
	if d.byIP == nil {
		d.byIP, d.raised = map[netip.Addr]*disabledIP{}, map[netip.Addr]time.Time{}
	}
	st := d.byIP[s.IP]
	if st == nil {
		st = &disabledIP{success: map[string]time.Time{}}
		d.byIP[s.IP] = st
	}
	if s.Code == codeDisabled {
		st.disabled.add(s.Time, s, d.Window)
	} else {
		st.success[s.User] = s.Time
	}
	// Only an address that tried a disabled account lately is looked at.
	if st.disabled.stale(s.Time, d.Window) {
		return
	}
	st.disabled.add(s.Time, nil, d.Window) // drops what is too old
	disabled := map[string]bool{}
	var evidence []string
	for _, it := range st.disabled.items {
		if it.v != nil {
			disabled[it.v.User] = true
			evidence = append(evidence, it.v.ID)
		}
	}
	var users []string
	for u, at := range st.success {
		if s.Time.Sub(at) <= d.Window && !disabled[u] {
			users = append(users, u)
		}
	}
	if len(disabled) == 0 || len(users) == 0 || len(users) >= d.MaxSuccessful ||
		float64(len(disabled))/float64(len(users)) < d.Ratio {
		return
	}
	if last, ok := d.raised[s.IP]; ok && s.Time.Sub(last) < d.Window {
		return // raised for this address within the window already
	}
	d.raised[s.IP] = s.Time
	slices.Sort(users)
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), s.IP, s.Time.Unix()), MITRE: []string{"T1078", "T1098"},
		Severity: "medium", IP: s.IP, First: s.Time, Last: s.Time, Evidence: evidence,
		Summary: fmt.Sprintf("%s tried %d disabled accounts and signed in to %v", s.IP, len(disabled), users)})
}

// MFAFatigue: a flood of denied second-factor prompts for one account
// from one address, then one accepted — the user gave in (after
// Sentinel's "MFA Spamming followed by Successful login"; ATT&CK T1621).
// Default: more than 10 denials (500121) within 5 minutes before the
// success.
type MFAFatigue struct {
	Denials int           `json:"denials"`
	Window  time.Duration `json:"window"`
	byKey   map[string]*window[*SignIn]
	sweep   sweeper
}

func (d *MFAFatigue) Name() string { return "mfaFatigue" }

func (d *MFAFatigue) Observe(s *SignIn, raise func(Alert)) {
	if d.byKey != nil && d.sweep.due(s.Time, d.Window) {
		sweepWindows(d.byKey, s.Time, d.Window)
	}
	if s.User == "" || !s.IP.IsValid() || (s.Code != codeMFADenied && !s.Success) {
		return
	}
	if d.byKey == nil {
		d.byKey = map[string]*window[*SignIn]{}
	}
	key := s.User + "|" + s.IP.String()
	w := d.byKey[key]
	if w == nil {
		w = &window[*SignIn]{}
		d.byKey[key] = w
	}
	if s.Code == codeMFADenied {
		w.add(s.Time, s, d.Window)
		return
	}
	w.add(s.Time, nil, d.Window)
	var evidence []string
	for _, it := range w.items {
		if it.v != nil {
			evidence = append(evidence, it.v.ID)
		}
	}
	delete(d.byKey, key)
	if len(evidence) <= d.Denials {
		return
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), key, s.Time.Unix()), MITRE: []string{"T1621", "T1110"},
		Severity: "high", User: s.User, UserID: s.UserID, IP: s.IP, First: s.Time, Last: s.Time, Evidence: append(evidence, s.ID),
		Summary: fmt.Sprintf("%d denied second-factor prompts for %s from %s, then one accepted", len(evidence), s.User, s.IP)})
}

// DefaultDetectors returns the detectors with their default thresholds.
func DefaultDetectors() []Detector {
	users := &userTable{} // one look-up of a sign-in's user for both
	return []Detector{
		&PasswordSpray{Accounts: 5, Window: 20 * time.Minute},
		&BruteForce{Failures: 10, Window: 20 * time.Minute},
		&MFAFatigue{Denials: 10, Window: 5 * time.Minute},
		&DisabledAccountIP{Window: 14 * 24 * time.Hour, Ratio: 0.5, MaxSuccessful: 50},
		&ImpossibleTravel{SpeedKmh: 1000, MinDistanceKm: 500, Window: 24 * time.Hour, users: users},
		&UnfamiliarFeatures{LearningPeriod: 5 * 24 * time.Hour, MinSignIns: 10, Memory: 14 * 24 * time.Hour, Fraction: 0.5, users: users},
		&AnonymousIP{Window: 24 * time.Hour},
		&SessionReplay{Window: time.Hour, MinDistanceKm: 500},
		&DistributedPasswordCracking{Failures: 30, Locations: 3, Window: 24 * time.Hour},
	}
}

// Run feeds sign-ins, sorted by time, through detectors and returns the
// alerts they raise, each key once.
func Run(signIns []SignIn, detectors []Detector) []Alert {
	slices.SortStableFunc(signIns, func(a, b SignIn) int { return a.Time.Compare(b.Time) })
	seen := map[string]bool{}
	var out []Alert
	for i := range signIns {
		for _, d := range detectors {
			d.Observe(&signIns[i], func(a Alert) {
				if !seen[a.Key] {
					seen[a.Key] = true
					out = append(out, a)
				}
			})
		}
	}
	return out
}
