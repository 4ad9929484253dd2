package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newLoginCmd() *cobra.Command {
	var f clientFlags
	var user string
	var passwordStdin, web bool
	var webTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a Verity server and keep the token for later commands",
		Long: `Login signs in with a user principal name and password and keeps the API
token, the server URL and the CA file in the user's configuration directory
(~/.config/verity/credentials.json, mode 0600, or $VERITY_CREDENTIALS_FILE).
The password is read from the terminal without echo, or from standard input
with --password-stdin; it is never accepted as a flag. When conditional access
asks for a second factor, login asks for the code from the authenticator app
(with --password-stdin, it reads it from the next line).`,
		Example: `  verity login --server https://127.0.0.1:8443 --ca verity-data/tls/ca.pem --user admin@verity.local
  echo "$PASSWORD" | verity login --server https://verity.example.com --user alice@example.com --password-stdin
  verity login --server https://verity.example.com --web     # prints an address to open in a browser`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, creds, err := f.newClient(false)
			if err != nil {
				return err
			}
			if web {
				creds, err = loginWeb(cmd, c, creds, webTimeout)
				if err != nil {
					return err
				}
				var me struct {
					UserPrincipalName string `json:"userPrincipalName"`
				}
				c.token = creds.Token
				if err := c.do(cmd.Context(), "GET", "/api/v1/me", nil, &me); err != nil {
					return fmt.Errorf("the server refused the new token: %w", err)
				}
				creds.User = me.UserPrincipalName
				if err := saveCredentials(creds); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Signed in to %s as %s (token expires %s).\n", creds.Server, creds.User, creds.ExpiresAt)
				return nil
			}
			if user == "" {
				return errors.New("--user is required (or sign in in a browser with --web)")
			}
			in := bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 8192))
			password, err := readPassword(cmd, in, passwordStdin)
			if err != nil {
				return err
			}
			var resp struct {
				AccessToken string `json:"access_token"`
				ExpiresAt   string `json:"expires_at"`
			}
			req := map[string]string{"userPrincipalName": user, "password": password}
			err = c.do(cmd.Context(), "POST", "/api/v1/login", req, &resp)
			// Conditional access asks for a second factor: the code from the
			// authenticator app, typed (or on the next line of standard input).
			var apiErr *apiError
			if errors.As(err, &apiErr) && apiErr.Code == "MfaRequired" && !strings.Contains(apiErr.Message, "browser") {
				code, rerr := readCode(cmd, in, passwordStdin)
				if rerr != nil {
					return rerr
				}
				req["otp"] = code
				err = c.do(cmd.Context(), "POST", "/api/v1/login", req, &resp)
			}
			if err != nil {
				return err
			}
			creds.Token, creds.ExpiresAt, creds.User = resp.AccessToken, resp.ExpiresAt, user
			if err := saveCredentials(creds); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Signed in to %s as %s (token expires %s).\n", creds.Server, user, resp.ExpiresAt)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&user, "user", "u", "", "user principal name")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().BoolVar(&web, "web", false, "sign in in a browser (any method the sign-in pages offer: passkeys, federation, ...)")
	cmd.Flags().DurationVar(&webTimeout, "web-timeout", 5*time.Minute, "how long to wait for the browser sign-in")
	return cmd
}

func readPassword(cmd *cobra.Command, in *bufio.Reader, fromStdin bool) (string, error) {
	if fromStdin {
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if f, ok := cmd.InOrStdin().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	return "", errors.New("standard input is not a terminal: pass --password-stdin")
}

// readCode reads the authenticator code: the next line of standard input
// with --password-stdin, else typed at the terminal.
func readCode(cmd *cobra.Command, in *bufio.Reader, fromStdin bool) (string, error) {
	if !fromStdin {
		f, ok := cmd.InOrStdin().(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("this sign-in needs a code from your authenticator app: pass it on the line after the password with --password-stdin")
		}
		fmt.Fprint(cmd.ErrOrStderr(), "Code from your authenticator app: ")
	}
	line, err := in.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read code: %w", err)
	}
	code := strings.TrimSpace(line)
	if code == "" {
		return "", errors.New("this sign-in needs a code from your authenticator app")
	}
	return code, nil
}

func newLogoutCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "Revoke the saved token and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, creds, err := f.newClient(true)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), "POST", "/api/v1/logout", nil, nil); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: the server did not revoke the token:", err)
			}
			creds.Token, creds.ExpiresAt = "", ""
			return saveCredentials(creds)
		},
	}
	f.register(cmd)
	return cmd
}
