package signin

import (
	"context"
	"encoding/json"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/store"
)

// AuditAction is the audit action of sign-in events.
const AuditAction = "signIn"

// Event is one sign-in attempt in the shape of Microsoft Graph's signIn
// resource, with the properties that apply to Verity. It is the Details of
// an audit event whose Action is AuditAction, Actor the user (when known),
// Target the application and Result "success", "failure" or
// "interrupted".
type Event struct {
	ID                        string               `json:"id"`
	CreatedDateTime           time.Time            `json:"createdDateTime"`
	UserID                    string               `json:"userId,omitempty"`
	UserPrincipalName         string               `json:"userPrincipalName"`
	UserDisplayName           string               `json:"userDisplayName,omitempty"`
	AppID                     string               `json:"appId"`
	AppDisplayName            string               `json:"appDisplayName,omitempty"`
	IPAddress                 string               `json:"ipAddress"`
	AutonomousSystemNumber    int                  `json:"autonomousSystemNumber,omitempty"`
	Location                  Location             `json:"location"`
	ClientAppUsed             string               `json:"clientAppUsed"`
	UserAgent                 string               `json:"userAgent,omitempty"`
	CorrelationID             string               `json:"correlationId"`
	IsInteractive             bool                 `json:"isInteractive"`
	AuthenticationRequirement string               `json:"authenticationRequirement"`
	AuthenticationDetails     []AuthenticationStep `json:"authenticationDetails"`
	Status                    Status               `json:"status"`
	ConditionalAccessStatus   string               `json:"conditionalAccessStatus"`
	AppliedConditionalAccess  []AppliedPolicy      `json:"appliedConditionalAccessPolicies"`
	RiskLevelDuringSignIn     string               `json:"riskLevelDuringSignIn"`
	RiskState                 string               `json:"riskState"`
	// RiskDetail says how an at-risk sign-in ended:
	// userPassedMFADrivenByRiskBasedPolicy when the user proved a second
	// factor the risk asked for.
	RiskDetail       string   `json:"riskDetail,omitempty"`
	RiskEventTypesV2 []string `json:"riskEventTypes_v2,omitempty"`
	SessionID        string   `json:"sessionId,omitempty"` // a digest, never the cookie
	// SignInEventTypes is interactiveUser, nonInteractiveUser (a refresh
	// token redeemed) or servicePrincipal (client credentials), as Graph's
	// beta signIn says.
	SignInEventTypes           []string `json:"signInEventTypes,omitempty"`
	ServicePrincipalID         string   `json:"servicePrincipalId,omitempty"`
	ServicePrincipalName       string   `json:"servicePrincipalName,omitempty"`
	IncomingTokenType          string   `json:"incomingTokenType,omitempty"` // refreshToken for a redemption
	AuthenticationMethodsUsed  []string `json:"authenticationMethodsUsed,omitempty"`
	AuthenticationContextClass string   `json:"authenticationContextClassReferences,omitempty"`
}

// Location is where the address is, as far as Verity knows.
type Location struct {
	City            string          `json:"city,omitempty"`
	State           string          `json:"state,omitempty"`
	CountryOrRegion string          `json:"countryOrRegion,omitempty"`
	GeoCoordinates  *GeoCoordinates `json:"geoCoordinates,omitempty"`
	NamedLocations  []string        `json:"namedLocations,omitempty"` // ids of the named locations that contain the address
}

// GeoCoordinates are a location's latitude and longitude.
type GeoCoordinates struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// AuthenticationStep is one method used in the attempt.
type AuthenticationStep struct {
	AuthenticationMethod       string    `json:"authenticationMethod"`
	AuthenticationMethodDetail string    `json:"authenticationMethodDetail,omitempty"` // the identity provider of a federated step
	Succeeded                  bool      `json:"succeeded"`
	AuthenticationStepDateTime time.Time `json:"authenticationStepDateTime"`
	AuthenticationStepResult   string    `json:"authenticationStepResultDetail,omitempty"`
}

// Status is the attempt's outcome: ErrorCode 0 is success; otherwise the
// Entra code that means the same thing, and a reason.
type Status struct {
	ErrorCode         int    `json:"errorCode"`
	FailureReason     string `json:"failureReason,omitempty"`
	AdditionalDetails string `json:"additionalDetails,omitempty"`
}

// AppliedPolicy is one conditional access policy's part in the attempt.
type AppliedPolicy struct {
	ID                      string   `json:"id"`
	DisplayName             string   `json:"displayName"`
	Result                  string   `json:"result"`
	EnforcedGrantControls   []string `json:"enforcedGrantControls"`
	EnforcedSessionControls []string `json:"enforcedSessionControls"`
}

// Entra's error codes for the outcomes Verity produces.
const (
	CodeSuccess             = 0
	CodeInvalidCredentials  = 50126 // invalid user name or password
	CodeLocked              = 50053 // locked: too many failed attempts
	CodeDisabled            = 50057 // the account is disabled
	CodeMFARequired         = 50074 // strong authentication is required (interrupted)
	CodeMFAFailed           = 500121
	CodePasswordChange      = 50055 // the password must be changed (interrupted)
	CodeBlockedByCA         = 53003
	CodeCannotMeetControls  = 53000 // a required control (a compliant device, ...) cannot be met here
	CodeStrengthUnavailable = 53004 // the required authentication strength needs a method the user lacks
	CodeFlowExpired         = 50132 // the sign-in took too long or its state is gone
)

// outcome of an event for the audit Result column.
const (
	resultSuccess     = "success"
	resultFailure     = "failure"
	resultInterrupted = "interrupted"
)

// caStatus is the event's conditionalAccessStatus for an outcome.
func caStatus(o access.Outcome) string {
	switch o {
	case access.OutcomeGrant:
		return "success"
	case access.OutcomeBlock, access.OutcomeInterrupt:
		return "failure"
	}
	return "notApplied"
}

// appliedPolicies lists each policy's result as the sign-in log shows it.
func appliedPolicies(res *access.Result) []AppliedPolicy {
	e := res.Engine()
	if e == nil {
		return []AppliedPolicy{}
	}
	ps := e.Policies()
	out := make([]AppliedPolicy, 0, len(res.Policies))
	for i := range res.Policies {
		pr := &res.Policies[i]
		p := ps[i]
		ap := AppliedPolicy{ID: p.ID, DisplayName: p.DisplayName, Result: pr.Status.String(),
			EnforcedGrantControls: []string{}, EnforcedSessionControls: []string{}}
		if pr.Applies {
			ap.EnforcedGrantControls, ap.EnforcedSessionControls = grantNames(p), sessionNames(p)
		}
		out = append(out, ap)
	}
	return out
}

// grantNames lists a policy's grant controls as the sign-in log names them.
func grantNames(p *access.Policy) []string {
	out := []string{}
	g := p.GrantControls
	if g == nil {
		return out
	}
	out = append(out, g.BuiltInControls...)
	if g.AuthenticationStrength != nil {
		out = append(out, "authenticationStrength")
	}
	if len(g.TermsOfUse) > 0 {
		out = append(out, "termsOfUse")
	}
	return out
}

// sessionNames lists a policy's session controls.
func sessionNames(p *access.Policy) []string {
	out := []string{}
	c := p.SessionControls
	if c == nil {
		return out
	}
	for _, x := range []struct {
		set  bool
		name string
	}{
		{c.SignInFrequency != nil, "signInFrequency"},
		{c.PersistentBrowser != nil, "persistentBrowser"},
		{c.ContinuousAccessEvaluation != nil, "continuousAccessEvaluation"},
		{c.ApplicationEnforcedRestrictions != nil, "applicationEnforcedRestrictions"},
		{c.CloudAppSecurity != nil, "cloudAppSecurity"},
	} {
		if x.set {
			out = append(out, x.name)
		}
	}
	return out
}

// record appends the event to the audit log. A sign-in that cannot be
// logged does not happen: the caller fails the attempt on error.
func record(ctx context.Context, st store.Store, requestID string, ev *Event, result string) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	_, err = st.AppendAudit(ctx, store.AuditEvent{
		Time: ev.CreatedDateTime, RequestID: requestID, Actor: ev.UserID, Action: AuditAction,
		Target: "/applications/" + ev.AppID, Result: result, Details: body,
	})
	return err
}

// LogSignIn records a sign-in that happened outside the pages (a token
// redeemed at the OpenID Connect provider: a refresh token, client
// credentials). result is "success" or "failure". Actor is the user, or
// the service principal for a workload. With queued, the record joins the
// audit log's next group commit without waiting for it (the frequent,
// successful redemptions: a full backlog is an error, and the caller
// refuses the token); otherwise it returns once the record is durable.
func LogSignIn(ctx context.Context, st store.Store, requestID string, ev *Event, result string, queued bool) error {
	if ev.ID == "" {
		ev.ID = newCorrelationID()
	}
	if ev.CorrelationID == "" {
		ev.CorrelationID = newCorrelationID()
	}
	if ev.AuthenticationDetails == nil {
		ev.AuthenticationDetails = []AuthenticationStep{}
	}
	if ev.AppliedConditionalAccess == nil {
		ev.AppliedConditionalAccess = []AppliedPolicy{}
	}
	if ev.RiskLevelDuringSignIn == "" {
		ev.RiskLevelDuringSignIn, ev.RiskState = "none", "none"
	}
	actor := ev.UserID
	if actor == "" {
		actor = ev.ServicePrincipalID
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	e := store.AuditEvent{Time: ev.CreatedDateTime, RequestID: requestID, Actor: actor,
		Action: AuditAction, Target: "/applications/" + ev.AppID, Result: result, Details: body}
	if queued {
		return st.AppendAuditAsync(ctx, e)
	}
	_, err = st.AppendAudit(ctx, e)
	return err
}

// AppliedPolicies lists each policy's part in a conditional access
// result as the sign-in log shows it, and ConditionalAccessStatus the
// overall status.
func AppliedPolicies(res *access.Result) []AppliedPolicy { return appliedPolicies(res) }

// ConditionalAccessStatus is the log's conditionalAccessStatus of an
// outcome.
func ConditionalAccessStatus(o access.Outcome) string { return caStatus(o) }
