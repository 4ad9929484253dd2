package signin

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// passwordCheck is the first factor, the same for the pages and the API:
// the smart lockout, the user (from a snapshot with every committed
// write), the password against its argon2id hash — or a dummy hash, so a
// wrong name costs what a wrong password does —, the lockout's count, the
// account's state, and a rehash when the parameters changed. It records
// the step on ev and returns the user, or the sign-in log code that ends
// the attempt (and, for a lock, until when). err is for Verity's own
// failures.
func (s *Service) passwordCheck(ctx context.Context, upn, password string, ip netip.Addr, ev *Event) (u *directory.User, code int, until time.Time, err error) {
	now := s.opts.Now()
	familiar := s.familiar.Seen(upn, authn.NetworkKey(ip))
	if locked, until := s.lockout.Locked(upn, familiar); locked {
		ev.Status = Status{ErrorCode: CodeLocked, FailureReason: "The account is locked because of too many failed sign-ins. Try again later."}
		return nil, CodeLocked, until, nil
	}
	if u, err = s.user(ctx, upn); err != nil {
		return nil, 0, time.Time{}, err
	}
	hash := ""
	if u != nil {
		ev.UserID, ev.UserDisplayName = u.ID, u.DisplayName
		switch c, err := s.opts.Store.GetCredential(ctx, u.ID, "password"); {
		case err == nil:
			hash = c.Hash
		case !errors.Is(err, store.ErrNotFound):
			return nil, 0, time.Time{}, err
		}
	}
	ok := false
	if hash == "" {
		_ = authn.VerifyPassword(dummyHash(), password)
	} else {
		ok = authn.VerifyPassword(hash, password) == nil
	}
	ev.AuthenticationDetails = append(ev.AuthenticationDetails, AuthenticationStep{AuthenticationMethod: "Password", Succeeded: ok, AuthenticationStepDateTime: now})
	if !ok {
		s.lockout.Fail(upn, familiar)
		ev.Status = Status{ErrorCode: CodeInvalidCredentials, FailureReason: "Invalid username or password."}
		return u, CodeInvalidCredentials, time.Time{}, nil
	}
	s.lockout.Succeed(upn, familiar)
	if !u.Enabled() {
		ev.Status = Status{ErrorCode: CodeDisabled, FailureReason: "The user account is disabled."}
		return u, CodeDisabled, time.Time{}, nil
	}
	if authn.NeedsRehash(hash) {
		if h, err := authn.HashPassword(password); err == nil {
			if err := s.opts.Store.SetCredential(ctx, store.Credential{PrincipalID: u.ID, Type: "password", Hash: h}); err != nil {
				s.log.WarnContext(ctx, "sign-in: rehash password", "user", u.ID, "err", err)
			}
		}
	}
	return u, CodeSuccess, time.Time{}, nil
}
