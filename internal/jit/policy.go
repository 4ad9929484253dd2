// Package jit is just-in-time network access, in the model of Microsoft
// Defender for Cloud's JIT VM access: a policy names protected resources
// and their ports, each with the sources that may ever ask for it and the
// longest time it may be open; the ports are closed to everyone else. A
// request (Defender's "initiate") opens one or more of those ports to one
// source address or range until a time of the requester's choosing within
// that bound; a newer request by the same requester for the same port
// replaces the older one, and time or the requester ends it.
//
// Policies and requests keep Defender's JSON shape (Microsoft.Security
// jitNetworkAccessPolicies, api-version 2020-01-01), so its examples and
// exports read as they are. A resource is named by a Verity scope: the
// identity-aware proxy enforces the policies whose resource is an
// application it publishes (/apps/{appId}), on the port of the route's
// external URL; other resource ids (a virtual machine's ARM id) are kept
// for the network layer. The compiled Gate answers "is this port open to
// this address now" from a decision snapshot, without the store.
package jit

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/schedule"
	"github.com/verityhq/verity/internal/strictjson"
)

// Store kinds.
const (
	PolicyKind  = "jitNetworkAccessPolicy"
	RequestKind = "jitNetworkAccessRequest"
)

// ResourceType is the policies' ARM type.
const ResourceType = "Microsoft.Security/locations/jitNetworkAccessPolicies"

// The RBAC actions Defender checks, at the protected resource's scope:
// reading policies, configuring them, and asking for access.
const (
	ActionRead     = "Microsoft.Security/locations/jitNetworkAccessPolicies/read"
	ActionWrite    = "Microsoft.Security/locations/jitNetworkAccessPolicies/write"
	ActionDelete   = "Microsoft.Security/locations/jitNetworkAccessPolicies/delete"
	ActionInitiate = "Microsoft.Security/locations/jitNetworkAccessPolicies/initiate/action"
)

// Protocols of a port.
const (
	ProtocolAny = "*"
	ProtocolTCP = "TCP"
	ProtocolUDP = "UDP"
)

// Bounds of a policy, Defender's where it has them.
const (
	MinAccessDuration = 5 * time.Minute
	MaxAccessDuration = 24 * time.Hour
	maxNameLen        = 56
	maxResources      = 100
	maxPorts          = 50
	maxPrefixes       = 100
	maxResourceID     = 1024
)

// Policy is a jitNetworkAccessPolicy: the resources it protects, and (on
// output) the requests made under it.
type Policy struct {
	// ID and Type are the policy's resource id and ARM type (output).
	ID         string     `json:"id,omitempty"`
	Name       string     `json:"name"`
	Type       string     `json:"type,omitempty"`
	Kind       string     `json:"kind,omitempty"`
	Location   string     `json:"location,omitempty"`
	Properties Properties `json:"properties"`
}

// Properties are a policy's resources and requests.
type Properties struct {
	VirtualMachines []Resource `json:"virtualMachines"`
	// Requests are the policy's requests, most recent first. They are
	// Verity's record: a policy written with requests keeps its own.
	Requests          []Request `json:"requests,omitempty"`
	ProvisioningState string    `json:"provisioningState,omitempty"`
}

// Resource is a protected resource (Defender's virtual machine) and its
// ports.
type Resource struct {
	// ID is the resource's scope: /apps/{appId} for an application the
	// proxy publishes, or any other resource id.
	ID    string `json:"id"`
	Ports []Port `json:"ports"`
	// PublicIPAddress is Defender's; kept, not used.
	PublicIPAddress string `json:"publicIpAddress,omitempty"`
}

// Port is a protected port: who may ever ask for it, and for how long.
type Port struct {
	Number   int    `json:"number"`
	Protocol string `json:"protocol"`
	// One of the two: a single prefix ("*", an address, a CIDR range), or
	// a list of them.
	AllowedSourceAddressPrefix   string            `json:"allowedSourceAddressPrefix,omitempty"`
	AllowedSourceAddressPrefixes []string          `json:"allowedSourceAddressPrefixes,omitempty"`
	MaxRequestAccessDuration     schedule.Duration `json:"maxRequestAccessDuration"`
}

// Sources are the port's allowed source prefixes, parsed; nil means any.
func (p *Port) Sources() ([]netip.Prefix, error) {
	list := p.AllowedSourceAddressPrefixes
	if p.AllowedSourceAddressPrefix != "" {
		list = []string{p.AllowedSourceAddressPrefix}
	}
	var out []netip.Prefix
	for _, s := range list {
		if s == "*" {
			return nil, nil
		}
		pfx, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, pfx)
	}
	return out, nil
}

// ParsePrefix reads an address ("192.0.2.7", a single host) or a CIDR
// range ("192.0.2.0/24"), masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address, a CIDR range or *", s)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%q: write IPv4 ranges in IPv4 form", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address, a CIDR range or *", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Normalize fills defaults: kind Basic, protocols upper-case ("*" when
// unset), resource ids without a trailing slash.
func (p *Policy) Normalize() {
	if p.Kind == "" {
		p.Kind = "Basic"
	}
	for i := range p.Properties.VirtualMachines {
		r := &p.Properties.VirtualMachines[i]
		if len(r.ID) > 1 {
			r.ID = strings.TrimSuffix(r.ID, "/")
		}
		for j := range r.Ports {
			pt := &r.Ports[j]
			pt.Protocol = strings.ToUpper(pt.Protocol)
			if pt.Protocol == "" {
				pt.Protocol = ProtocolAny
			}
		}
	}
}

// Validate reports the first invalid property with its JSON path.
func (p *Policy) Validate() error {
	if len(p.Name) > maxNameLen || !nameRE.MatchString(p.Name) {
		return strictjson.Errorf("name", "must be 1 to %d letters, digits, '-', '_' or '.'", maxNameLen)
	}
	if p.Kind != "Basic" {
		return strictjson.Errorf("kind", "must be Basic")
	}
	vms := p.Properties.VirtualMachines
	if len(vms) == 0 || len(vms) > maxResources {
		return strictjson.Errorf("properties.virtualMachines", "must list 1 to %d resources", maxResources)
	}
	seen := map[string]bool{}
	for i := range vms {
		at := strictjson.Index("properties.virtualMachines", i)
		r := &vms[i]
		if err := ValidResourceID(r.ID); err != nil {
			return strictjson.Errorf(at+".id", "%v", err)
		}
		if seen[strings.ToLower(r.ID)] {
			return strictjson.Errorf(at+".id", "%s is listed twice", r.ID)
		}
		seen[strings.ToLower(r.ID)] = true
		if len(r.Ports) == 0 || len(r.Ports) > maxPorts {
			return strictjson.Errorf(at+".ports", "must list 1 to %d ports", maxPorts)
		}
		ports := map[int]bool{}
		for j := range r.Ports {
			if err := r.Ports[j].validate(strictjson.Index(at+".ports", j)); err != nil {
				return err
			}
			if ports[r.Ports[j].Number] {
				return strictjson.Errorf(strictjson.Index(at+".ports", j)+".number", "port %d is listed twice", r.Ports[j].Number)
			}
			ports[r.Ports[j].Number] = true
		}
	}
	return nil
}

func (p *Port) validate(at string) error {
	if p.Number < 1 || p.Number > 65535 {
		return strictjson.Errorf(at+".number", "must be a port from 1 to 65535")
	}
	switch p.Protocol {
	case ProtocolAny, ProtocolTCP, ProtocolUDP:
	default:
		return strictjson.Errorf(at+".protocol", "must be *, TCP or UDP")
	}
	if (p.AllowedSourceAddressPrefix == "") == (len(p.AllowedSourceAddressPrefixes) == 0) {
		return strictjson.Errorf(at, "set exactly one of allowedSourceAddressPrefix and allowedSourceAddressPrefixes")
	}
	if len(p.AllowedSourceAddressPrefixes) > maxPrefixes {
		return strictjson.Errorf(at+".allowedSourceAddressPrefixes", "at most %d prefixes", maxPrefixes)
	}
	for k, s := range p.AllowedSourceAddressPrefixes {
		if _, err := ParsePrefix(s); err != nil && s != "*" {
			return strictjson.Errorf(strictjson.Index(at+".allowedSourceAddressPrefixes", k), "%v", err)
		}
	}
	if s := p.AllowedSourceAddressPrefix; s != "" && s != "*" {
		if _, err := ParsePrefix(s); err != nil {
			return strictjson.Errorf(at+".allowedSourceAddressPrefix", "%v", err)
		}
	}
	if d := p.MaxRequestAccessDuration.D(); d < MinAccessDuration || d > MaxAccessDuration {
		return strictjson.Errorf(at+".maxRequestAccessDuration", "must be from PT5M to P1D")
	}
	return nil
}

// ValidResourceID checks a resource id: a clean absolute path, as RBAC
// scopes are.
func ValidResourceID(id string) error {
	if id == "" || len(id) > maxResourceID || !strings.HasPrefix(id, "/") || id == "/" || path.Clean(id) != id ||
		strings.ContainsAny(id, "\x00\\?#") {
		return errors.New("must be a resource id, a clean absolute path such as /apps/{appId}")
	}
	return nil
}

// resource finds a policy's resource by id (ignoring case).
func (p *Policy) resource(id string) *Resource {
	for i := range p.Properties.VirtualMachines {
		if strings.EqualFold(p.Properties.VirtualMachines[i].ID, id) {
			return &p.Properties.VirtualMachines[i]
		}
	}
	return nil
}

// port finds a resource's port.
func (r *Resource) port(n int) *Port {
	for i := range r.Ports {
		if r.Ports[i].Number == n {
			return &r.Ports[i]
		}
	}
	return nil
}

// PolicyID is a policy's resource id.
func PolicyID(name string) string {
	return "/providers/Microsoft.Security/jitNetworkAccessPolicies/" + name
}
