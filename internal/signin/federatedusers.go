package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/verityhq/verity/internal/decision"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// Who a verified ID token names. An account at a provider is the pair
// (issuer, value of the claimsMapping.userId claim); a "federatedIdentity"
// record links it to a Verity user (its id is the digest of issuer, claim
// name and value; its subject the user id). Without a link, a provider
// with jitProvisioning makes the user — and its memberships of the mapped
// groups — in one store transaction; otherwise the sign-in is refused.
// Links are keyed by the issuer, not the provider object, so a provider
// deleted and added again finds its users; an existing Verity user is
// never linked by matching a name or an e-mail address.

const (
	kindFederatedLink = "federatedIdentity"
	// pendingLink is how long one sign-in's provisioning of an account
	// holds off another sign-in of the same account.
	pendingLink = 30 * time.Second
	// maxGroupValues bounds the groups claim values read.
	maxGroupValues = 2000
	// Audit actions of the directory changes federated sign-ins make.
	auditProvision  = "identityProviders.provisionUser"
	auditSyncGroups = "identityProviders.syncGroups"
)

// federatedLink is the body of a federatedIdentity record.
type federatedLink struct {
	Issuer             string    `json:"issuer"`
	Claim              string    `json:"claim"`
	Value              string    `json:"value"`
	IdentityProviderID string    `json:"identityProviderId"`
	UserID             string    `json:"userId"`
	Pending            bool      `json:"pending,omitempty"` // being provisioned
	CreatedDateTime    time.Time `json:"createdDateTime"`
	UpdatedDateTime    time.Time `json:"updatedDateTime"`
}

func linkID(issuer, claim, value string) string { return digest(issuer + "\n" + claim + "\n" + value) }

// refusal is a federated sign-in that cannot go on: the log's code and
// reason, the page's status and message.
type refusal struct {
	code    int
	reason  string
	status  int
	message string
}

// federatedUser finds (or provisions) the user a verified ID token names,
// brings its mapped group memberships in line with the token, and waits
// until the snapshot has every write so far, so conditional access sees
// the user as the store does. A refusal is not an error.
func (s *Service) federatedUser(r *http.Request, idp *directory.IdentityProvider, claims map[string]any, now time.Time) (*directory.User, *refusal, error) {
	ctx := r.Context()
	cm := idp.ClaimsMapping
	value := claimString(claims, cm.UserID)
	if value == "" || len(value) > 1024 {
		return nil, &refusal{CodeFederatedTokenInvalid, "The ID token has no " + cm.UserID + " claim to identify the account.",
			http.StatusUnauthorized, "The sign-in from " + idp.DisplayName + " does not say who you are. Ask your administrator."}, nil
	}
	groups, groupsKnown := s.claimedGroups(ctx, idp, claims)
	id := linkID(idp.Issuer, cm.UserID, value)
	for range 3 {
		rec, err := s.opts.Store.GetRecord(ctx, kindFederatedLink, id)
		var version int64
		switch {
		case err == nil:
			var link federatedLink
			if err := json.Unmarshal(rec.Body, &link); err != nil {
				return nil, nil, fmt.Errorf("federated identity record: %w", err)
			}
			version = rec.Version
			if link.Pending && now.Sub(link.UpdatedDateTime) < pendingLink {
				return nil, &refusal{CodeFederatedUserUnknown, "Another sign-in of this account is provisioning its user.",
					http.StatusConflict, "Your account is being set up. Try again in a moment."}, nil
			}
			u, err := s.storedUser(ctx, link.UserID)
			if err != nil {
				return nil, nil, err
			}
			if u != nil {
				if !u.Enabled() {
					return u, &refusal{CodeDisabled, "The user account is disabled.", http.StatusForbidden, "Your account is disabled. Contact your administrator."}, nil
				}
				link.Pending, link.UpdatedDateTime = false, now
				s.saveLink(ctx, rec, &link)
				if groupsKnown {
					if err := s.syncGroups(r, idp, u, groups); err != nil {
						return nil, nil, err
					}
				}
				return u, nil, s.catchUp(ctx)
			}
			// The user is gone, or its provisioning was abandoned.
		case errors.Is(err, store.ErrNotFound):
		default:
			return nil, nil, err
		}
		// An administrator may have linked an existing user through its
		// identities; the first sign-in records the link.
		if u, ambiguous := s.opts.Live.Current().Directory().UserByIdentity(idp.Issuer, value); ambiguous {
			return nil, &refusal{CodeFederatedUserUnknown, "Several users list this account at " + idp.DisplayName + " in their identities.",
				http.StatusConflict, "Your account at " + idp.DisplayName + " is connected to more than one user here. Ask your administrator."}, nil
		} else if u != nil {
			if !u.Enabled() {
				return u, &refusal{CodeDisabled, "The user account is disabled.", http.StatusForbidden, "Your account is disabled. Contact your administrator."}, nil
			}
			link := federatedLink{Issuer: idp.Issuer, Claim: cm.UserID, Value: value, IdentityProviderID: idp.ID, UserID: u.ID,
				CreatedDateTime: now, UpdatedDateTime: now}
			_, err := s.writeLink(ctx, id, version, &link)
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			if err != nil {
				return nil, nil, err
			}
			if groupsKnown {
				if err := s.syncGroups(r, idp, u, groups); err != nil {
					return nil, nil, err
				}
			}
			return u, nil, s.catchUp(ctx)
		}
		if !idp.JITProvisioning {
			return nil, &refusal{CodeFederatedUserUnknown, "No user is linked to this account at " + idp.DisplayName + ", and just-in-time provisioning is off.",
				http.StatusForbidden, "Your account at " + idp.DisplayName + " is not set up to use this service. Ask your administrator to add you."}, nil
		}
		u, why := newFederatedUser(idp, claims, now)
		if why != "" {
			return nil, &refusal{CodeFederatedUserUnknown, why, http.StatusForbidden,
				"Your account at " + idp.DisplayName + " cannot be set up automatically. Ask your administrator."}, nil
		}
		// Claim the account, so that one sign-in provisions it.
		link := federatedLink{Issuer: idp.Issuer, Claim: cm.UserID, Value: value, IdentityProviderID: idp.ID, UserID: u.ID,
			Pending: true, CreatedDateTime: now, UpdatedDateTime: now}
		lr, err := s.writeLink(ctx, id, version, &link)
		if errors.Is(err, store.ErrConflict) {
			continue // another sign-in got there first: look again
		}
		if err != nil {
			return nil, nil, err
		}
		if err := s.provision(r, idp, u, groups); err != nil {
			_ = s.opts.Store.DeleteRecord(context.WithoutCancel(ctx), kindFederatedLink, id)
			if errors.Is(err, store.ErrConflict) {
				return u, &refusal{CodeFederatedUserUnknown, "A user named " + u.UserPrincipalName + " exists already and is not linked to this account at " + idp.DisplayName + "; an administrator must link them.",
					http.StatusConflict, "An account with your name exists already. Ask your administrator to connect it to " + idp.DisplayName + "."}, nil
			}
			return nil, nil, err
		}
		link.Pending = false
		s.saveLink(ctx, lr, &link)
		return u, nil, s.catchUp(ctx)
	}
	return nil, &refusal{CodeFederatedUserUnknown, "Other sign-ins of this account kept changing its link.", http.StatusConflict, "Try again in a moment."}, nil
}

// writeLink creates the link record id (version 0) or replaces the one
// at version; ErrConflict when another sign-in wrote it first.
func (s *Service) writeLink(ctx context.Context, id string, version int64, link *federatedLink) (store.Record, error) {
	body, err := json.Marshal(link)
	if err != nil {
		return store.Record{}, err
	}
	r := store.Record{Kind: kindFederatedLink, ID: id, Subject: link.UserID, Body: body, Version: version}
	if version == 0 {
		return s.opts.Store.CreateRecord(ctx, r)
	}
	return s.opts.Store.UpdateRecord(ctx, r)
}

// saveLink writes link over rec when it changed (best effort: a link left
// pending with its user in place is adopted by the next sign-in).
func (s *Service) saveLink(ctx context.Context, rec store.Record, link *federatedLink) {
	var old federatedLink
	if json.Unmarshal(rec.Body, &old) == nil && old == *link {
		return
	}
	body, err := json.Marshal(link)
	if err != nil {
		return
	}
	rec.Body = body
	if _, err := s.opts.Store.UpdateRecord(ctx, rec); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.WarnContext(ctx, "federated sign-in: update link", "user", link.UserID, "err", err)
	}
}

// storedUser reads a user from the store (nil when there is none): the
// store, not the snapshot, decides whether a link's user still exists.
func (s *Service) storedUser(ctx context.Context, id string) (*directory.User, error) {
	o, err := s.opts.Store.Get(ctx, directory.KindUser, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return directory.Users.FromObject(o)
}

// catchUp waits until the snapshot has every committed write.
func (s *Service) catchUp(ctx context.Context) error {
	rev, err := s.opts.Store.Revision(ctx)
	if err != nil || rev <= s.opts.Live.Current().Revision() {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.opts.Live.WaitFor(wctx, rev); err != nil {
		return fmt.Errorf("the directory is behind the store: %w", err)
	}
	return nil
}

// newFederatedUser makes the user a provider's claims describe, or says
// why it cannot.
func newFederatedUser(idp *directory.IdentityProvider, claims map[string]any, now time.Time) (*directory.User, string) {
	cm := idp.ClaimsMapping
	upn := strings.ToLower(claimString(claims, cm.UserPrincipalName))
	if !validUPN(upn) {
		upn = strings.ToLower(claimString(claims, cm.Email))
	}
	if !validUPN(upn) {
		return nil, "The ID token has no user name: neither its " + cm.UserPrincipalName + " nor its " + cm.Email + " claim is of the form name@domain."
	}
	if domain := upn[strings.LastIndexByte(upn, '@')+1:]; len(idp.DomainHints) > 0 && !idp.ServesDomain(domain) {
		return nil, "The account's user name is in domain " + domain + ", which is not among the identity provider's domainHints."
	}
	u := &directory.User{ID: directory.NewID(), UserPrincipalName: upn,
		GivenName: text(claimString(claims, cm.GivenName), 64), Surname: text(claimString(claims, cm.Surname), 64)}
	u.DisplayName = text(claimString(claims, cm.DisplayName), 256)
	if strings.TrimSpace(u.DisplayName) == "" {
		u.DisplayName = text(strings.TrimSpace(u.GivenName+" "+u.Surname), 256)
	}
	if strings.TrimSpace(u.DisplayName) == "" {
		u.DisplayName = upn
	}
	if mail := claimString(claims, cm.Email); mail != "" {
		trial := directory.User{UserPrincipalName: "a@b.c", DisplayName: "a", Mail: mail}
		trial.Normalize()
		if trial.Validate() == nil {
			u.Mail = mail
		}
	}
	u.SetCreatedDateTime(now)
	u.Normalize()
	if err := u.Validate(); err != nil {
		return nil, "The account's claims do not make a valid user: " + err.Error()
	}
	return u, ""
}

func validUPN(s string) bool {
	u := directory.User{UserPrincipalName: s, DisplayName: "x"}
	u.Normalize()
	return s != "" && u.Validate() == nil
}

// text makes a claim fit a directory text property: no control
// characters, at most max runes.
func text(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max])
	}
	return s
}

// claimedGroups returns the Verity groups the token's groups claim maps
// to, and whether the token says (an Entra token with too many groups
// carries a reference instead, "_claim_names"; then the memberships are
// left as they are).
func (s *Service) claimedGroups(ctx context.Context, idp *directory.IdentityProvider, claims map[string]any) ([]string, bool) {
	name := idp.ClaimsMapping.Groups
	if names, ok := claims["_claim_names"].(map[string]any); ok && names[name] != nil {
		s.log.WarnContext(ctx, "federated sign-in: the groups claim is a reference (too many groups); memberships left as they are", "identityProvider", idp.ID)
		return nil, false
	}
	values := claimStrings(claims, name)
	if len(values) > maxGroupValues {
		values = values[:maxGroupValues]
	}
	return idp.GroupsFor(values), true
}

// provision creates u and its memberships of groups in one transaction,
// and audits it; store.ErrConflict when its user name is taken.
func (s *Service) provision(r *http.Request, idp *directory.IdentityProvider, u *directory.User, groups []string) error {
	ctx := r.Context()
	obj, err := directory.Users.Object(u)
	if err != nil {
		return err
	}
	var added []string
	rev, err := s.opts.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		added = added[:0]
		if err := tx.Create(ctx, obj); err != nil {
			return err
		}
		for _, g := range groups {
			changed, err := setMembership(ctx, tx, g, u.ID, true)
			if err != nil {
				return err
			}
			if changed {
				added = append(added, g)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.auditDirectory(r, auditProvision, u.ID, rev, map[string]any{"id": u.ID, "userPrincipalName": u.UserPrincipalName,
		"identityProvider": idp.ID, "addedToGroups": nonNil(added)})
	return nil
}

// syncGroups makes u a member of exactly those of the provider's mapped
// groups the token maps to: the provider owns the membership of the
// groups it maps. Nothing is written when nothing changes.
func (s *Service) syncGroups(r *http.Request, idp *directory.IdentityProvider, u *directory.User, want []string) error {
	ctx := r.Context()
	mapped := idp.MappedGroups()
	if len(mapped) == 0 {
		return nil
	}
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	have := s.opts.Live.Current().Directory().MemberOf(u.ID)
	differs := false
	for _, g := range mapped {
		if slices.Contains(have, g) != slices.Contains(want, g) {
			differs = true
			break
		}
	}
	if !differs {
		return nil
	}
	// Whether an Owner exists before the change, so that only a change that
	// takes the last one away is refused.
	hadOwner, err := decision.OwnerRemains(ctx, s.opts.Store)
	if err != nil {
		return err
	}
	var added, removed []string
	rev, err := s.opts.Store.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		added, removed = added[:0], removed[:0]
		for _, g := range mapped {
			member := slices.Contains(want, g)
			changed, err := setMembership(ctx, tx, g, u.ID, member)
			if err != nil {
				return err
			}
			switch {
			case changed && member:
				added = append(added, g)
			case changed:
				removed = append(removed, g)
			}
		}
		if len(removed) > 0 && hadOwner {
			// The provider does not get to take away the last Owner: the
			// memberships stay as they were, and an administrator decides.
			if ok, err := decision.OwnerRemains(ctx, tx); err != nil {
				return err
			} else if !ok {
				return errLastOwner
			}
		}
		return nil
	})
	if errors.Is(err, errLastOwner) {
		s.log.WarnContext(ctx, "federated sign-in: group memberships left as they were: removing them would leave no Owner", "identityProvider", idp.ID, "user", u.ID)
		return nil
	}
	if err != nil {
		return err
	}
	if len(added)+len(removed) > 0 {
		s.auditDirectory(r, auditSyncGroups, u.ID, rev, map[string]any{"id": u.ID, "identityProvider": idp.ID,
			"addedToGroups": nonNil(added), "removedFromGroups": nonNil(removed)})
	}
	return nil
}

var errLastOwner = errors.New("the change would leave no Owner")

// setMembership makes userID a member of group g or not, and reports
// whether that changed anything. A group that no longer exists is skipped.
func setMembership(ctx context.Context, tx store.Tx, g, userID string, member bool) (bool, error) {
	o, err := tx.Get(ctx, directory.KindGroup, g)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	grp, err := directory.Groups.FromObject(o)
	if err != nil {
		return false, err
	}
	i := slices.Index(grp.Members, userID)
	switch {
	case member && i < 0:
		grp.Members = append(grp.Members, userID)
	case !member && i >= 0:
		grp.Members = slices.Delete(grp.Members, i, i+1)
	default:
		return false, nil
	}
	grp.Normalize()
	if err := grp.Validate(); err != nil {
		return false, err
	}
	upd, err := directory.Groups.Object(grp)
	if err != nil {
		return false, err
	}
	upd.ManagedBy = o.ManagedBy
	return true, tx.Update(ctx, upd, o.Revision)
}

// auditDirectory records a directory change a federated sign-in made, as
// the API records its own: the user is the actor.
func (s *Service) auditDirectory(r *http.Request, action, userID string, rev int64, details map[string]any) {
	details["revision"] = rev
	body, err := json.Marshal(details)
	if err == nil {
		_, err = s.opts.Store.AppendAudit(context.WithoutCancel(r.Context()), store.AuditEvent{Time: s.opts.Now(), RequestID: requestID(r),
			Actor: userID, Action: action, Target: "/users/" + userID, Result: resultSuccess, Details: body})
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "federated sign-in: audit directory change", "action", action, "user", userID, "err", err)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// claimString reads a string claim (a number is written in decimal).
func claimString(claims map[string]any, name string) string {
	switch v := claims[name].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// claimStrings reads a claim that lists strings; a single string is a
// list of one.
func claimStrings(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
