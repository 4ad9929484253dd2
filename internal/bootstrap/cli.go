package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

// CLIAppID is the application id of Verity's command line, a public
// OpenID Connect client (RFC 8252: a loopback redirect on any port, PKCE)
// that `verity login --web` signs in with; the admin API accepts the
// access tokens issued to it.
const CLIAppID = "5c1a9e3b-7f2d-4b8e-a6c0-0d1e2f3a4b5c"

// cliRedirect is the CLI's registered redirect: the provider accepts any
// port on it.
const cliRedirect = "http://127.0.0.1/callback"

// CLIClient makes sure the Verity CLI application and its service
// principal exist (created once; an administrator may disable the
// service principal to turn browser sign-in for the CLI off). Nodes
// starting together race safely: a create that loses to another node's
// is not an error.
func CLIClient(ctx context.Context, st store.Store) error {
	if _, err := st.GetByKey(ctx, directory.KindApplication, CLIAppID); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	now := time.Now().UTC()
	app := &directory.Application{ID: directory.NewID(), AppID: CLIAppID, DisplayName: "Verity CLI",
		Description: "The verity command line: verity login --web", CreatedDateTime: &now,
		PublicClient: &directory.PublicClientApplication{RedirectURIs: []string{cliRedirect}}}
	app.Normalize()
	sp := &directory.ServicePrincipal{ID: directory.NewID(), AppID: CLIAppID, DisplayName: "Verity CLI", CreatedDateTime: &now}
	sp.Normalize()
	ao, err := directory.Applications.Object(app)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	so, err := directory.ServicePrincipals.Object(sp)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	_, err = st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.GetByKey(ctx, directory.KindApplication, CLIAppID); err == nil {
			return errAlreadyBootstrapped
		}
		if err := tx.Create(ctx, ao); err != nil {
			return err
		}
		return tx.Create(ctx, so)
	})
	if err != nil && !errors.Is(err, errAlreadyBootstrapped) && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("bootstrap: the Verity CLI application: %w", err)
	}
	return nil
}
