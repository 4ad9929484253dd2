package signin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/store"
)

// Consent: before an application gets a user's identity the first time,
// the user agrees to what it asks (its OpenID scopes), once; the answer is
// remembered per user and application ("consent" records) for a year, and
// asked again when the application asks for more.

const (
	kindConsent = "consent"
	consentTTL  = 365 * 24 * time.Hour
)

type consentRecord struct {
	Scopes []string  `json:"scopes"`
	At     time.Time `json:"at"`
}

func consentID(userID, appID string) string { return userID + ":" + strings.ToLower(appID) }

// Consented reports whether the user agreed to share scopes with appID,
// and when the latest agreement was given.
func (s *Service) Consented(ctx context.Context, userID, appID string, scopes []string) (bool, time.Time, error) {
	r, err := s.opts.Store.GetRecord(ctx, kindConsent, consentID(userID, appID))
	if errors.Is(err, store.ErrNotFound) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	var c consentRecord
	if err := json.Unmarshal(r.Body, &c); err != nil {
		return false, time.Time{}, nil
	}
	for _, sc := range scopes {
		if !slices.Contains(c.Scopes, sc) {
			return false, c.At, nil
		}
	}
	return true, c.At, nil
}

// AskConsent shows the consent page for appID and scopes to the signed-in
// user; the answer comes back to returnTo (a path on this server) with
// consent=granted or consent=denied.
func (s *Service) AskConsent(w http.ResponseWriter, r *http.Request, sess *Session, appID string, scopes []string, returnTo string) {
	name := appID
	if app, ok := s.opts.Live.Current().Directory().ApplicationByAppID(appID); ok && app.DisplayName != "" {
		name = app.DisplayName
	}
	var items []string
	for _, sc := range scopes {
		if d := scopeText[sc]; d != "" && !slices.Contains(items, d) {
			items = append(items, d)
		}
	}
	s.page(w, r, http.StatusOK, consentPage{CSRF: s.csrfCookie(w, r), App: name, AppID: appID, UPN: sess.UPN,
		Scopes: strings.Join(scopes, " "), Items: items, ReturnTo: safeReturn(returnTo)})
}

var scopeText = map[string]string{
	"openid":         "Sign you in",
	"profile":        "See your name and user name",
	"email":          "See your email address",
	"offline_access": "Keep access to what you allow while you are not using it",
}

func (s *Service) postConsent(w http.ResponseWriter, r *http.Request) {
	if err := s.form(w, r); err != nil || !s.csrfCookieMatches(r, r.PostFormValue("csrf")) {
		s.page(w, r, http.StatusBadRequest, errorPage{Title: "Not saved", Message: "The page was out of date or did not come from this site. Go back to the application and try again."})
		return
	}
	sess, err := s.Current(r)
	if err != nil || sess == nil {
		s.expired(w, r)
		return
	}
	returnTo := safeReturn(r.PostFormValue("return_to"))
	appID := strings.ToLower(strings.TrimSpace(r.PostFormValue("app")))
	scopes := strings.Fields(r.PostFormValue("scopes"))
	answer := "denied"
	if r.PostFormValue("decision") == "allow" && appID != "" && len(scopes) > 0 && len(scopes) <= 32 {
		now := s.opts.Now()
		rec := consentRecord{Scopes: scopes, At: now}
		if old, err := s.opts.Store.GetRecord(r.Context(), kindConsent, consentID(sess.UserID, appID)); err == nil {
			var c consentRecord
			if json.Unmarshal(old.Body, &c) == nil {
				for _, sc := range c.Scopes {
					if !slices.Contains(rec.Scopes, sc) {
						rec.Scopes = append(rec.Scopes, sc)
					}
				}
			}
		}
		body, _ := json.Marshal(rec)
		if _, err := s.opts.Store.PutRecord(r.Context(), store.Record{Kind: kindConsent, ID: consentID(sess.UserID, appID), Subject: sess.UserID,
			Body: body, ExpiresAt: now.Add(consentTTL)}); err != nil {
			s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Not saved", Message: "Try again in a moment."})
			return
		}
		answer = "granted"
	}
	sep := "?"
	if strings.Contains(returnTo, "?") {
		sep = "&"
	}
	http.Redirect(w, r, returnTo+sep+url.Values{"consent": {answer}}.Encode(), http.StatusSeeOther)
}

// RevokeConsents forgets every consent of a user.
func RevokeConsents(ctx context.Context, st store.Store, userID string) (int, error) {
	return st.DeleteRecords(ctx, kindConsent, userID)
}
