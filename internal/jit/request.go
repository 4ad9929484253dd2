package jit

import (
	"net/netip"
	"time"
)

// Request is a JitNetworkAccessRequest: ports of resources opened to a
// source until their end times.
type Request struct {
	// ID names the request in Verity (Defender has none); Policy is the
	// policy it was made under.
	ID              string            `json:"id"`
	Policy          string            `json:"policy"`
	VirtualMachines []RequestResource `json:"virtualMachines"`
	StartTimeUtc    time.Time         `json:"startTimeUtc"`
	// Requestor is the requester's userPrincipalName (or id when it has
	// none); RequestorID its object id.
	Requestor     string `json:"requestor"`
	RequestorID   string `json:"requestorId"`
	Justification string `json:"justification,omitempty"`
}

// RequestResource is one resource's ports in a request.
type RequestResource struct {
	ID    string        `json:"id"`
	Ports []RequestPort `json:"ports"`
}

// RequestPort is one opened port: to which source, until when, and
// whether it still is.
type RequestPort struct {
	Number                       int       `json:"number"`
	AllowedSourceAddressPrefix   string    `json:"allowedSourceAddressPrefix,omitempty"`
	AllowedSourceAddressPrefixes []string  `json:"allowedSourceAddressPrefixes,omitempty"`
	EndTimeUtc                   time.Time `json:"endTimeUtc"`
	Status                       string    `json:"status"`
	StatusReason                 string    `json:"statusReason"`
	// RevokedTimeUtc is when a revoked port closed (Verity's).
	RevokedTimeUtc *time.Time `json:"revokedTimeUtc,omitempty"`
}

// Port statuses and the reasons for them, Defender's values.
const (
	StatusInitiated = "Initiated"
	StatusRevoked   = "Revoked"

	ReasonUserRequested         = "UserRequested"
	ReasonExpired               = "Expired"
	ReasonNewerRequestInitiated = "NewerRequestInitiated"
)

// sources are the port's source prefixes (the request's are checked when
// made; an unreadable one, only from a hand-edited store, opens nothing).
func (p *RequestPort) sources() []netip.Prefix {
	list := p.AllowedSourceAddressPrefixes
	if p.AllowedSourceAddressPrefix != "" {
		list = []string{p.AllowedSourceAddressPrefix}
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if s == "*" {
			out = append(out, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
			continue
		}
		if pfx, err := ParsePrefix(s); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

// openAt reports whether the port is open at t: initiated and not ended.
func (p *RequestPort) openAt(t time.Time) bool {
	return p.Status == StatusInitiated && t.Before(p.EndTimeUtc)
}

// AsOf is the request as it stands at t: ports whose end has passed read
// Revoked/Expired even before the sweep records it.
func (r Request) AsOf(t time.Time) Request {
	out := r
	out.VirtualMachines = make([]RequestResource, len(r.VirtualMachines))
	for i, vm := range r.VirtualMachines {
		out.VirtualMachines[i] = RequestResource{ID: vm.ID, Ports: append([]RequestPort(nil), vm.Ports...)}
		for j := range out.VirtualMachines[i].Ports {
			p := &out.VirtualMachines[i].Ports[j]
			if p.Status == StatusInitiated && !t.Before(p.EndTimeUtc) {
				p.Status, p.StatusReason = StatusRevoked, ReasonExpired
			}
		}
	}
	return out
}

// Open reports whether any of the request's ports is open at t.
func (r *Request) Open(t time.Time) bool {
	for _, vm := range r.VirtualMachines {
		for i := range vm.Ports {
			if vm.Ports[i].openAt(t) {
				return true
			}
		}
	}
	return false
}

// lastEnd is when the request's last port ends (or was revoked).
func (r *Request) lastEnd() time.Time {
	var last time.Time
	for _, vm := range r.VirtualMachines {
		for _, p := range vm.Ports {
			end := p.EndTimeUtc
			if p.RevokedTimeUtc != nil && p.RevokedTimeUtc.Before(end) {
				end = *p.RevokedTimeUtc
			}
			if end.After(last) {
				last = end
			}
		}
	}
	return last
}

// InitiateRequest is the body of Defender's initiate call: ports to open,
// each until an end time, to a source; and why.
type InitiateRequest struct {
	VirtualMachines []InitiateResource `json:"virtualMachines"`
	Justification   string             `json:"justification,omitempty"`
}

// InitiateResource is one resource's ports in an initiate call.
type InitiateResource struct {
	ID    string         `json:"id"`
	Ports []InitiatePort `json:"ports"`
}

// InitiatePort asks for one port: until EndTimeUtc, from the source
// prefix (the caller's own address when none is given).
type InitiatePort struct {
	Number                       int        `json:"number"`
	StartTimeUtc                 *time.Time `json:"startTimeUtc,omitempty"`
	EndTimeUtc                   time.Time  `json:"endTimeUtc"`
	AllowedSourceAddressPrefix   string     `json:"allowedSourceAddressPrefix,omitempty"`
	AllowedSourceAddressPrefixes []string   `json:"allowedSourceAddressPrefixes,omitempty"`
}
