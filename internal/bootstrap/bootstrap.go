// Package bootstrap creates the first administrator of an empty Verity
// database, so that no installation ever starts with a default password.
// It imports directory, rbac, authn and store; never api or cmd.
package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/rbac"
	"github.com/verityhq/verity/internal/store"
)

// AdminUPN is the user principal name of the administrator created on an
// empty database.
const AdminUPN = "admin@verity.local"

// Result is the one-time credential of a freshly created administrator.
// The caller shows it once; only its hash is stored.
type Result struct {
	UserPrincipalName string
	Password          string
}

// errAlreadyBootstrapped ends the bootstrap transaction without writing.
var errAlreadyBootstrapped = errors.New("already bootstrapped")

// Admin creates the first administrator when no role assignment exists:
// a user with a random one-time password and the Owner role at "/". Several
// nodes starting together on one database race safely: the check and the
// writes share one transaction, and a loser removes its unused credential.
func Admin(ctx context.Context, st store.Store) (*Result, error) {
	existing, err := st.List(ctx, rbac.Kind, store.ListOptions{Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if len(existing) > 0 {
		return nil, nil
	}
	password := authn.GeneratePassword()
	hash, err := authn.HashPassword(password)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	enabled := true
	now := time.Now().UTC()
	user := &directory.User{
		ID: directory.NewID(), UserPrincipalName: AdminUPN, DisplayName: "Bootstrap administrator",
		AccountEnabled: &enabled, CreatedDateTime: &now,
	}
	user.Normalize()
	// The credential goes first: a crash between the two steps leaves an
	// orphan hash, never an administrator nobody can sign in as.
	if err := st.SetCredential(ctx, store.Credential{PrincipalID: user.ID, Type: "password", Hash: hash, UpdatedAt: now}); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	reuse := ""
	_, err = st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		existing, err := tx.List(ctx, rbac.Kind, store.ListOptions{Limit: 1})
		if err != nil {
			return err
		}
		if len(existing) > 0 {
			return errAlreadyBootstrapped
		}
		if old, err := tx.GetByKey(ctx, directory.KindUser, user.Key()); err == nil {
			reuse = old.ID // an earlier admin of that name lost its role: reuse it
		} else if errors.Is(err, store.ErrNotFound) {
			obj, err := directory.Users.Object(user)
			if err != nil {
				return err
			}
			if err := tx.Create(ctx, obj); err != nil {
				return err
			}
		} else {
			return err
		}
		principal := user.ID
		if reuse != "" {
			principal = reuse
		}
		a := rbac.Assignment{ID: directory.NewID(), PrincipalID: principal, PrincipalType: "User", RoleDefinitionID: rbac.OwnerID, Scope: "/",
			Description: "bootstrap administrator", CreatedOn: now.Format(time.RFC3339)}
		a.Normalize()
		body, err := json.Marshal(a)
		if err != nil {
			return err
		}
		return tx.Create(ctx, store.Object{Kind: rbac.Kind, ID: a.ID, Body: body})
	})
	if errors.Is(err, errAlreadyBootstrapped) {
		_ = st.DeleteCredentials(ctx, user.ID)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if reuse != "" {
		if err := st.SetCredential(ctx, store.Credential{PrincipalID: reuse, Type: "password", Hash: hash, UpdatedAt: now}); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		_ = st.DeleteCredentials(ctx, user.ID)
	}
	return &Result{UserPrincipalName: AdminUPN, Password: password}, nil
}
