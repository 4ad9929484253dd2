package detect

import (
	"fmt"
	"hash/maphash"
	"time"
)

// DistributedPasswordCracking: many failed passwords for one account from
// several places within a day — an attacker guessing through proxies
// spread over countries and cities. After Sentinel's "Distributed password
// cracking attempts" (DistribPassCrackAttempt: per account over 1 day,
// more than 30 failures and 3 or more distinct locations); ATT&CK T1110.
// Defaults: more than Failures (30) failed passwords within Window (24
// hours) from at least Locations (3) distinct locations
// (country/state/city; failures without a location count towards the
// failures, not the locations). One alert per account in each Window
// (from midnight UTC).
// Per account the rule keeps only the last Failures+1 failures and the
// Locations most recent locations: that decides the rule exactly.
type DistributedPasswordCracking struct {
	Failures  int           `json:"failures"`
	Locations int           `json:"locations"`
	Window    time.Duration `json:"window"`

	seed   maphash.Seed
	byUser map[uint64]*cracking // by a hash of the user's name
	sweep  sweeper
}

type cracking struct {
	fails  []failure   // the last Failures+1 failures, oldest first
	places []placeSeen // the Locations most recently seen, most recent first
	raised int64       // the window (day) of the account's last alert, plus one; 0: none
}

type failure struct {
	at int64 // unix nanoseconds
	id recordID
}

type placeSeen struct {
	h  uint32
	at int64
}

func (d *DistributedPasswordCracking) Name() string { return "distributedPasswordCracking" }

// locationOf is a number for a sign-in's country/state/city, 0 when none
// is known.
func locationOf(s *SignIn) uint32 {
	if s.Country == "" && s.State == "" && s.City == "" {
		return 0
	}
	return hashFold(s.Country, s.State, s.City)
}

func (d *DistributedPasswordCracking) Observe(s *SignIn, raise func(Alert)) {
	now := s.Time.UnixNano()
	if d.byUser != nil && d.sweep.due(s.Time, d.Window) {
		for u, c := range d.byUser {
			if now-c.fails[len(c.fails)-1].at > int64(d.Window) { // and so the window it was raised in is over
				delete(d.byUser, u)
			}
		}
	}
	if !failedCredential(s) || s.User == "" {
		return
	}
	if d.byUser == nil {
		d.byUser, d.seed = map[uint64]*cracking{}, maphash.MakeSeed()
	}
	key := maphash.String(d.seed, s.User)
	c := d.byUser[key]
	if c == nil {
		c = &cracking{}
		d.byUser[key] = c
	}
	if len(c.fails) > d.Failures {
		c.fails = append(c.fails[:0], c.fails[1:]...)
	}
	c.fails = append(c.fails, failure{now, idOf(s.ID)})
	if h := locationOf(s); h != 0 && d.Locations > 0 {
		i := 0
		for i < len(c.places) && c.places[i].h != h {
			i++
		}
		if i == len(c.places) {
			if len(c.places) < d.Locations {
				c.places = append(c.places, placeSeen{})
			}
			i = len(c.places) - 1
		}
		copy(c.places[1:i+1], c.places[:i])
		c.places[0] = placeSeen{h, now}
	}
	w := windowOf(s.Time, d.Window)
	if len(c.fails) <= d.Failures || now-c.fails[0].at > int64(d.Window) || c.raised == w.n+1 {
		return
	}
	places := 0
	for _, p := range c.places {
		if now-p.at <= int64(d.Window) {
			places++
		}
	}
	if places < d.Locations {
		return
	}
	c.raised = w.n + 1
	evidence := make([]string, len(c.fails))
	for i, f := range c.fails {
		evidence[i] = f.id.String()
	}
	raise(Alert{Detector: d.Name(), Key: fmt.Sprintf("%s/%s/%d", d.Name(), s.User, w.start), MITRE: []string{"T1110"},
		Severity: "medium", User: s.User, UserID: s.UserID, IP: s.IP, First: time.Unix(0, c.fails[0].at).UTC(), Last: s.Time,
		Evidence: evidence,
		Summary:  fmt.Sprintf("more than %d failed passwords for %s within %v, from %d or more locations", d.Failures, s.User, d.Window, places)})
}
