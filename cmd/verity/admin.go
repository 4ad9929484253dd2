package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/verityhq/verity/internal/authn"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Offline administration on the database (recovery)",
	}
	var file, data, user string
	reset := &cobra.Command{
		Use:   "reset-password --user UPN",
		Short: "Set a new random password for a user, directly in the database",
		Long: `Reset-password is the way back in when every administrator's password is
lost: it opens the database named by the configuration (or the data
directory of 'verity up'), gives the user a new random password, enables
the account if it was disabled, signs the user out everywhere, and prints
the password once. Run it on a machine that
can reach the database, as someone allowed to read its configuration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user is required")
			}
			if data == "" {
				data = os.Getenv("VERITY_DATA")
			}
			cfg, err := loadOfflineConfig(file, data)
			if err != nil {
				return err
			}
			log := newLogger(config.Log{Level: "warn", Format: "text"}, cmd.ErrOrStderr())
			ctx, cancel := context.WithTimeout(cmd.Context(), cfg.Store.ConnectTimeout.D()+30*time.Second)
			defer cancel()
			st, err := store.Open(ctx, storeConfig(cfg), log)
			if err != nil {
				return err
			}
			defer st.Close()
			obj, err := st.GetByKey(ctx, directory.KindUser, strings.ToLower(user))
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user %q in %s", user, storeConfig(cfg).RedactedDSN())
			}
			if err != nil {
				return err
			}
			password := authn.GeneratePassword()
			hash, err := authn.HashPassword(password)
			if err != nil {
				return err
			}
			if err := st.SetCredential(ctx, store.Credential{PrincipalID: obj.ID, Type: "password", Hash: hash, UpdatedAt: time.Now().UTC()}); err != nil {
				return err
			}
			if err := st.DeletePrincipalTokens(ctx, obj.ID); err != nil {
				return err
			}
			if err := enableUser(ctx, st, obj.ID); err != nil {
				return err
			}
			if _, err := st.AppendAudit(ctx, store.AuditEvent{Time: time.Now().UTC(), Action: "users.resetPasswordOffline",
				Target: "/users/" + obj.ID, Result: "success", Details: []byte(`{"via":"verity admin reset-password"}`)}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "New password for %s (shown once): %s\n", user, password)
			return nil
		},
	}
	reset.Flags().StringVarP(&file, "config", "c", "", "configuration file of the node (or $VERITY_CONFIG)")
	reset.Flags().StringVar(&data, "data", "", "data directory of verity up (or $VERITY_DATA)")
	reset.Flags().StringVarP(&user, "user", "u", "", "user principal name")
	cmd.AddCommand(reset)
	return cmd
}

// enableUser turns accountEnabled back on: recovery must work for an
// administrator who was disabled.
func enableUser(ctx context.Context, st store.Store, id string) error {
	_, err := st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		obj, err := tx.Get(ctx, directory.KindUser, id)
		if err != nil {
			return err
		}
		u, err := directory.Users.FromObject(obj)
		if err != nil {
			return err
		}
		if u.Enabled() {
			return nil
		}
		enabled := true
		u.AccountEnabled = &enabled
		upd, err := directory.Users.Object(u)
		if err != nil {
			return err
		}
		upd.ManagedBy = obj.ManagedBy
		return tx.Update(ctx, upd, obj.Revision)
	})
	return err
}
