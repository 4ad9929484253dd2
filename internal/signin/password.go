package signin

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/verityhq/verity/internal/access"
	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/store"
)

// The password page serves two cases: a sign-in that must change the
// password (an administrator's reset, or conditional access asking for a
// password change) — the current password was proved moments ago in the
// same attempt — and a signed-in user changing it, who proves the current
// one again.

func (s *Service) getPassword(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(flowCookie); err == nil && c.Value != "" {
		f, ok := s.withFlow(w, r, stepPasswordChange)
		if !ok {
			return
		}
		s.page(w, r, http.StatusOK, passwordPage{CSRF: f.CSRF, Forced: true, MinLength: s.opts.PasswordPolicy.MinLength})
		return
	}
	sess, err := s.Current(r)
	if err != nil || sess == nil {
		http.Redirect(w, r, SignInURL("/signin/password", ""), http.StatusSeeOther)
		return
	}
	s.page(w, r, http.StatusOK, passwordPage{CSRF: s.csrfCookie(w, r), MinLength: s.opts.PasswordPolicy.MinLength})
}

func (s *Service) postPassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := s.opts.Now()
	if c, err := r.Cookie(flowCookie); err == nil && c.Value != "" {
		f, ok := s.withFlow(w, r, stepPasswordChange)
		if !ok {
			return
		}
		again := passwordPage{CSRF: f.CSRF, Forced: true, MinLength: s.opts.PasswordPolicy.MinLength}
		if msg := s.changePassword(r, f.UserID, "", r.PostFormValue("new"), r.PostFormValue("confirm")); msg != "" {
			again.Error = msg
			s.page(w, r, http.StatusBadRequest, again)
			return
		}
		// Every other session of the user ends with the old password.
		if _, err := RevokeSessions(ctx, s.opts.Store, f.UserID); err != nil {
			s.fail(w, r, s.event(f, now), err)
			return
		}
		f.Satisfied |= access.ControlPasswordChange
		f.Details = append(f.Details, AuthenticationStep{AuthenticationMethod: "Password", Succeeded: true, AuthenticationStepDateTime: now, AuthenticationStepResult: "Password changed"})
		f.done(stepPasswordChange)
		m, err := loadMethods(ctx, s.opts.Store, f.UserID)
		if err != nil {
			s.fail(w, r, s.event(f, now), err)
			return
		}
		s.advance(w, r, f, m)
		return
	}
	sess, err := s.Current(r)
	if err != nil || sess == nil {
		http.Redirect(w, r, SignInURL("/signin/password", ""), http.StatusSeeOther)
		return
	}
	if err := s.form(w, r); err != nil || !s.csrfCookieMatches(r, r.PostFormValue("csrf")) {
		s.page(w, r, http.StatusBadRequest, errorPage{Title: "Password not changed", Message: "The page was out of date or did not come from this site.", Retry: "/signin/password"})
		return
	}
	again := passwordPage{CSRF: s.csrfCookie(w, r), MinLength: s.opts.PasswordPolicy.MinLength}
	if msg := s.changePassword(r, sess.UserID, r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("confirm")); msg != "" {
		again.Error = msg
		s.page(w, r, http.StatusBadRequest, again)
		return
	}
	// Sign out everywhere else; this browser keeps a fresh session.
	if _, err := RevokeSessions(ctx, s.opts.Store, sess.UserID); err != nil {
		s.log.ErrorContext(ctx, "sign-in: revoke sessions after a password change", "user", sess.UserID, "err", err)
	}
	sess.CreatedAt, sess.AuthTime, sess.LastSeen = now, now, now
	secret, err := createSession(ctx, s.opts.Store, sess)
	if err != nil {
		s.clearCookie(w, sessionCookie)
	} else {
		s.setCookie(w, sessionCookie, secret, 0)
	}
	s.page(w, r, http.StatusOK, passwordPage{Done: true})
}

// changePassword checks and sets a new password, returning what to tell
// the user when it cannot ("" on success). current is checked unless
// empty (a forced change inside a sign-in).
func (s *Service) changePassword(r *http.Request, userID, current, next, confirm string) string {
	ctx := r.Context()
	cred, err := s.opts.Store.GetCredential(ctx, userID, "password")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "Your password could not be changed right now. Try again."
	}
	if current != "" || r.PostForm.Has("current") {
		if cred.Hash == "" || authn.VerifyPassword(cred.Hash, current) != nil {
			return "Your current password is incorrect."
		}
	}
	if next != confirm {
		return "The new passwords do not match."
	}
	if cred.Hash != "" && authn.VerifyPassword(cred.Hash, next) == nil {
		return "Choose a password you have not used here before."
	}
	if err := s.opts.PasswordPolicy.Check(next); err != nil {
		if errors.Is(err, authn.ErrBreachedPassword) {
			return "That password has appeared in a data breach. Choose another."
		}
		return "Choose a password of at least " + strconv.Itoa(s.opts.PasswordPolicy.MinLength) + " characters."
	}
	h, err := authn.HashPassword(next)
	if err != nil {
		return "Your password could not be changed right now. Try again."
	}
	if err := s.opts.Store.SetCredential(ctx, store.Credential{PrincipalID: userID, Type: "password", Hash: h}); err != nil {
		return "Your password could not be changed right now. Try again."
	}
	if _, err := updateMethods(ctx, s.opts.Store, userID, func(m *Methods) error {
		m.MustChangePassword, m.PasswordChangedAt = false, s.opts.Now()
		return nil
	}); err != nil {
		s.log.ErrorContext(ctx, "sign-in: record password change", "user", userID, "err", err)
	}
	return ""
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.Current(r)
	if err != nil {
		s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Not available", Message: "Try again in a moment."})
		return
	}
	if sess == nil {
		http.Redirect(w, r, SignInURL("/signin/session", ""), http.StatusSeeOther)
		return
	}
	m, err := loadMethods(r.Context(), s.opts.Store, sess.UserID)
	if err != nil {
		s.page(w, r, http.StatusServiceUnavailable, errorPage{Title: "Not available", Message: "Try again in a moment."})
		return
	}
	s.page(w, r, http.StatusOK, sessionPage{CSRF: s.csrfCookie(w, r), UPN: sess.UPN, Strength: Strength(sess.Methods).String(),
		Methods: sess.AMR(), SignedIn: sess.AuthTime.UTC().Format(time.RFC1123), Expires: sess.ExpiresAt.UTC().Format(time.RFC1123),
		Passkeys: len(m.Passkeys), CanAddPasskey: s.webauthn != nil, RPID: s.rpID(), Registered: r.URL.Query().Get("registered") == "passkey"})
}

func (s *Service) postLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.form(w, r); err != nil || !s.csrfCookieMatches(r, r.PostFormValue("csrf")) {
		s.page(w, r, http.StatusBadRequest, errorPage{Title: "Not signed out", Message: "The page was out of date or did not come from this site.", Retry: "/signin/session"})
		return
	}
	if err := s.SignOut(w, r); err != nil {
		s.log.ErrorContext(r.Context(), "sign-in: end session", "err", err)
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// SignOut ends the request's session, if any, on the server and in the
// browser. The caller has checked that the request is the user's own (a
// CSRF-guarded form, or an OIDC logout request with a valid ID token hint
// or a confirmation).
func (s *Service) SignOut(w http.ResponseWriter, r *http.Request) error {
	s.clearCookie(w, sessionCookie)
	c, err := r.Cookie(sessionCookie)
	if err != nil || !validSecret(c.Value) {
		return nil
	}
	if err := s.opts.Store.DeleteRecord(r.Context(), kindSession, digest(c.Value)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}
