package detect

import (
	"fmt"
	"net/netip"
	"time"
)

// AnonymousIP: a user's sign-in from an anonymising address — a Tor exit
// node, an anonymous proxy or VPN — in List (addresses and CIDRs, as
// LoadAddressList reads a list file). After Microsoft Entra ID
// Protection's "Anonymous IP address" (riskEventType anonymizedIPAddress,
// medium; ATT&CK T1090.003, T1078). Only sign-ins that got past the
// password count (a success, or one interrupted or refused after it: a
// second factor asked for or denied, conditional access): as in ID
// Protection, wrong passwords are no risk to the account, and the spray
// detectors see those. One alert per user and address in each Window (24
// hours, from midnight UTC). The list is looked up by bisection of its
// merged ranges.
type AnonymousIP struct {
	List   []string      `json:"list"`
	Window time.Duration `json:"window"`

	set    addrList
	raised map[anonKey]int64 // the window of the last alert
	sweep  sweeper
}

type anonKey struct {
	user string
	ip   netip.Addr
}

func (d *AnonymousIP) Name() string { return "anonymousIP" }

// Validate names a bad list entry.
func (d *AnonymousIP) Validate() error {
	_, err := parseAddressList("list", d.List)
	return err
}

// Entra codes of sign-ins refused or interrupted after the password was
// accepted.
var pastPassword = map[int]bool{
	50072: true, 50074: true, 50076: true, 50079: true, // a second factor (or its registration) is required
	500121: true,              // the second factor failed or was denied
	50140:  true, 50158: true, // "keep me signed in", an external security challenge
	53000: true, 53001: true, 53003: true, 53004: true, // conditional access refused it
}

// passwordAccepted reports whether s got past the password.
func passwordAccepted(s *SignIn) bool { return s.Success || pastPassword[s.Code] }

// anonymous reports whether s is a sign-in of a user from a listed
// address.
func (d *AnonymousIP) anonymous(s *SignIn) bool {
	return s.User != "" && !s.ServicePrincipal && passwordAccepted(s) && d.set.get(d.List).contains(s.IP)
}

func (d *AnonymousIP) Observe(s *SignIn, raise func(Alert)) {
	w := windowOf(s.Time, d.Window)
	if d.raised != nil && d.sweep.due(s.Time, d.Window) {
		for k, n := range d.raised {
			if n < w.n {
				delete(d.raised, k)
			}
		}
	}
	if !d.anonymous(s) {
		return
	}
	if d.raised == nil {
		d.raised = map[anonKey]int64{}
	}
	k := anonKey{s.User, s.IP}
	if n, ok := d.raised[k]; ok && n == w.n {
		return
	}
	d.raised[k] = w.n
	what := "signed in"
	if !s.Success {
		what = fmt.Sprintf("got past the password (then %d)", s.Code)
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%s/%d", d.Name(), s.User, s.IP, w.start),
		MITRE: []string{"T1090.003", "T1078"}, Severity: "medium", User: s.User, UserID: s.UserID, IP: s.IP,
		First: s.Time, Last: s.Time, Evidence: []string{s.ID},
		Summary: fmt.Sprintf("%s %s from %s, an anonymising address (Tor, proxy or VPN)", s.User, what, s.IP)})
}
