package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/store"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The tamper-evident audit log: checkpoints, proofs, verification",
		Long: `The audit log is a Merkle tree (RFC 6962) of every sign-in, decision and
change, with signed checkpoints. Save a checkpoint and the log's verifier key
somewhere the database's administrators cannot write; later, 'verity audit
verify --checkpoint FILE --key KEY' proves that nothing it covered was
altered or removed, and says where if something was. See docs/audit.md.`,
	}
	cmd.AddCommand(newAuditCheckpointCmd(), newAuditKeyCmd(), newAuditProveCmd(), newAuditConsistencyCmd(), newAuditVerifyCmd(), newAuditWitnessKeyCmd(), newAuditWitnessCmd())
	return cmd
}

func newAuditCheckpointCmd() *cobra.Command {
	var f clientFlags
	var create bool
	var out string
	cmd := &cobra.Command{
		Use:   "checkpoint [--new] [-o FILE]",
		Short: "Print the latest signed checkpoint of the audit log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			method := "GET"
			if create {
				method = "POST"
			}
			var note []byte
			if err := c.do(cmd.Context(), method, "/api/v1/auditLogs/checkpoint", nil, &note); err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, note)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&create, "new", false, "sign a checkpoint of the log as it is now first")
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	return cmd
}

func newAuditKeyCmd() *cobra.Command {
	var f clientFlags
	var out string
	cmd := &cobra.Command{
		Use:   "key [-o FILE]",
		Short: "Print the verifier key of the audit log's checkpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var info struct {
				VerifierKey string `json:"verifierKey"`
			}
			if err := c.do(cmd.Context(), "GET", "/api/v1/auditLogs/log", nil, &info); err != nil {
				return err
			}
			return writeOut(cmd.OutOrStdout(), out, []byte(info.VerifierKey+"\n"))
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE instead of standard output")
	return cmd
}

func newAuditProveCmd() *cobra.Command {
	var f clientFlags
	var index uint64
	var checkpointFile, key string
	cmd := &cobra.Command{
		Use:   "prove --index N --checkpoint FILE --key KEY",
		Short: "Prove that an event is in the log covered by a saved checkpoint",
		Long: `Prove fetches the event at leaf index N with its inclusion proof for the
tree of the saved checkpoint, and checks both here: the checkpoint's
signature with the key, and that the event is the leaf at N of that tree. It
prints the event as logged.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cp, err := readCheckpoint(checkpointFile, key)
			if err != nil {
				return err
			}
			if index >= cp.Size {
				return fmt.Errorf("--index %d: the checkpoint covers leaves 0 to %d", index, cp.Size-1)
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var p struct {
				LeafHash []byte   `json:"leafHash"`
				Hashes   [][]byte `json:"hashes"`
				Leaf     []byte   `json:"leaf"`
			}
			if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/auditLogs/proofs/inclusion?index=%d&treeSize=%d", index, cp.Size), nil, &p); err != nil {
				return err
			}
			if err := audit.VerifyInclusion(index, cp.Size, audit.LeafHash(p.Leaf), p.Hashes, cp.Root); err != nil {
				return fmt.Errorf("the proof does not hold: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\nleaf %d is in the log of %d leaves signed by %s (root %s)\n",
				p.Leaf, index, cp.Size, cp.Origin, base64.StdEncoding.EncodeToString(cp.Root))
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().Uint64Var(&index, "index", 0, "leaf index of the event")
	cmd.Flags().StringVar(&checkpointFile, "checkpoint", "", "a saved checkpoint (verity audit checkpoint -o FILE)")
	cmd.Flags().StringVar(&key, "key", "", "the log's verifier key, or @FILE (verity audit key -o FILE)")
	_ = cmd.MarkFlagRequired("checkpoint")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

func newAuditVerifyCmd() *cobra.Command {
	var file, data, checkpointFile, key string
	var witnesses []string
	cmd := &cobra.Command{
		Use:   "verify [--checkpoint FILE] [--key KEY] [--witness-key KEY...]",
		Short: "Recompute the audit log from the database and check it",
		Long: `Verify reads the database named by the configuration (or the data directory
of 'verity up') directly, hashes every audit event again and rebuilds the
Merkle tree, and checks it against every signed checkpoint — those in the
database and, with --checkpoint, one you saved — and against the stored tree.
It prints the first leaf index where the log differs from what was logged:
an event modified, deleted, inserted or moved, or a span rewritten with its
hashes. Exit status 1 when it does not verify.

Without --key, checkpoints are checked with the key the database names,
which someone who can write the database could have replaced: keep the key
(verity audit key) with your checkpoints.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" {
				data = os.Getenv("VERITY_DATA")
			}
			cfg, err := loadOfflineConfig(file, data)
			if err != nil {
				return err
			}
			log := newLogger(config.Log{Level: "warn", Format: "text"}, cmd.ErrOrStderr())
			ctx, cancel := context.WithTimeout(cmd.Context(), cfg.Store.ConnectTimeout.D()+time.Hour)
			defer cancel()
			st, err := store.Open(ctx, storeConfig(cfg), log)
			if err != nil {
				return err
			}
			defer st.Close()
			opts := audit.VerifyOptions{}
			if key != "" {
				if opts.VerifierKey, err = readKey(key); err != nil {
					return err
				}
			}
			stored, err := audit.StoredVerifierKey(ctx, st)
			if err != nil && opts.VerifierKey == "" {
				return fmt.Errorf("the database names no checkpoint key (%w); pass --key", err)
			}
			if opts.VerifierKey == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "note: checking checkpoints with the key the database names; pass --key with the key you kept")
			} else if stored != "" && stored != opts.VerifierKey {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: the database names a different checkpoint key than --key")
			}
			if checkpointFile != "" {
				if opts.Trusted, err = os.ReadFile(checkpointFile); err != nil {
					return err
				}
			}
			if len(witnesses) > 0 {
				if opts.Trusted == nil {
					return errors.New("--witness-key needs --checkpoint: the checkpoint the witnesses signed")
				}
				var keys []string
				for _, w := range witnesses {
					k, err := readKey(w)
					if err != nil {
						return err
					}
					keys = append(keys, k)
				}
				if err := audit.Witnessed(opts.Trusted, keys); err != nil {
					return err
				}
			}
			rep, err := audit.Verify(ctx, st, stored, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "leaves read: %d (tree: %d), checkpoints checked: %d\n", rep.Leaves, rep.TreeSize, rep.Checkpoints)
			if rep.OK() {
				fmt.Fprintf(out, "root: %s\nthe audit log verifies\n", base64.StdEncoding.EncodeToString(rep.Root))
				return nil
			}
			fmt.Fprintf(out, "NOT VERIFIED: leaf %d: %s: %s\n", rep.First.Index, rep.First.Kind, rep.First.Detail)
			return fmt.Errorf("the audit log does not verify: leaf %d %s", rep.First.Index, rep.First.Kind)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file (or $VERITY_CONFIG)")
	cmd.Flags().StringVar(&data, "data", "", "data directory of verity up (or $VERITY_DATA)")
	cmd.Flags().StringVar(&checkpointFile, "checkpoint", "", "a checkpoint you saved (verity audit checkpoint -o FILE)")
	cmd.Flags().StringVar(&key, "key", "", "the log's verifier key you kept, or @FILE")
	cmd.Flags().StringArrayVar(&witnesses, "witness-key", nil, "a witness's verifier key, or @FILE: the checkpoint must carry its signature (repeatable)")
	return cmd
}

// loadOfflineConfig is the configuration of a node or of a command that
// opens the database itself: the file (or $VERITY_CONFIG), VERITY_
// variables and, for the latter, the data directory of verity up (--data
// or $VERITY_DATA; a node ignores $VERITY_DATA: pass "" and none).
func loadOfflineConfig(file, data string) (config.Config, error) {
	env := os.Environ()
	if data != "" {
		env = append(env, "VERITY_DATA_DIR="+data)
	}
	if file == "" {
		file = os.Getenv("VERITY_CONFIG")
	}
	return config.Load(file, env)
}

func readKey(v string) (string, error) {
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", err
		}
		v = string(b)
	}
	return strings.TrimSpace(v), nil
}

func readCheckpoint(file, key string) (audit.Checkpoint, error) {
	if file == "" || key == "" {
		return audit.Checkpoint{}, errors.New("--checkpoint and --key are required")
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	k, err := readKey(key)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	return audit.ParseCheckpoint(text, k)
}

func writeOut(stdout io.Writer, file string, b []byte) error {
	if file == "" {
		_, err := stdout.Write(b)
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

func newAuditWitnessKeyCmd() *cobra.Command {
	var name, out string
	cmd := &cobra.Command{
		Use:   "witness-key --name NAME -o FILE",
		Short: "Make a witness's signing key; print its verifier key",
		Long: `Witness-key makes an Ed25519 signing key for a witness — someone outside the
database's administrators who co-signs checkpoints after checking that the log
only grew — writes it to FILE (mode 0600) and prints the verifier key, which
goes in audit.witnesses and is given to verify with --witness-key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" || out == "" {
				return errors.New("--name and -o are required")
			}
			skey, vkey, err := note.GenerateKey(rand.Reader, name)
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := f.WriteString(skey + "\n"); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), vkey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the witness's name, e.g. witness.example.com")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file for the signing key (created, mode 0600)")
	return cmd
}

func newAuditWitnessCmd() *cobra.Command {
	var f clientFlags
	var logKey, keyFile, stateFile string
	cmd := &cobra.Command{
		Use:   "witness --log-key KEY --key FILE --state FILE",
		Short: "Check that the audit log only grew, and co-sign its latest checkpoint",
		Long: `Witness fetches the latest checkpoint, checks the log's signature, and — when
it has co-signed before (--state) — that the log only grew since: the same
root for the same size, or a consistency proof from the last one it signed.
Then it signs the checkpoint with the witness key and hands it back; the log
keeps the signature of every witness in audit.witnesses. Run it from a
system the database's administrators do not control, on a schedule.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if logKey == "" || keyFile == "" || stateFile == "" {
				return errors.New("--log-key, --key and --state are required")
			}
			lk, err := readKey(logKey)
			if err != nil {
				return err
			}
			skey, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
			if err != nil {
				return fmt.Errorf("--key: %w", err)
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var text []byte
			if err := c.do(ctx, "GET", "/api/v1/auditLogs/checkpoint", nil, &text); err != nil {
				return err
			}
			cp, err := audit.ParseCheckpoint(text, lk)
			if err != nil {
				return err
			}
			if prevText, err := os.ReadFile(stateFile); err == nil {
				prev, err := audit.ParseCheckpoint(prevText, lk)
				if err != nil {
					return fmt.Errorf("--state: %w", err)
				}
				switch {
				case cp.Size < prev.Size:
					return fmt.Errorf("the log shrank: it shows %d leaves, this witness signed %d", cp.Size, prev.Size)
				case cp.Size == prev.Size && !bytes.Equal(cp.Root, prev.Root):
					return fmt.Errorf("the log shows another root for %d leaves than the one this witness signed", cp.Size)
				case cp.Size > prev.Size:
					var p struct {
						Hashes [][]byte `json:"hashes"`
					}
					if err := c.do(ctx, "GET", fmt.Sprintf("/api/v1/auditLogs/proofs/consistency?from=%d&to=%d", prev.Size, cp.Size), nil, &p); err != nil {
						return err
					}
					if err := audit.VerifyConsistency(prev.Size, cp.Size, p.Hashes, prev.Root, cp.Root); err != nil {
						return fmt.Errorf("the log did not only grow from %d to %d leaves: %w", prev.Size, cp.Size, err)
					}
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			v, _ := note.NewVerifier(lk)
			n, err := note.Open(text, note.VerifierList(v))
			if err != nil {
				return err
			}
			signed, err := note.Sign(n, signer)
			if err != nil {
				return err
			}
			var stored []byte
			if err := c.doText(ctx, "POST", "/api/v1/auditLogs/checkpoint/cosignature", signed, &stored); err != nil {
				return err
			}
			if err := os.WriteFile(stateFile, signed, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "co-signed the checkpoint of %d leaves as %s\n", cp.Size, signer.Name())
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&logKey, "log-key", "", "the log's verifier key, or @FILE (verity audit key)")
	cmd.Flags().StringVar(&keyFile, "key", "", "the witness's signing key file (verity audit witness-key)")
	cmd.Flags().StringVar(&stateFile, "state", "", "file with the last checkpoint this witness signed (created)")
	return cmd
}

func newAuditConsistencyCmd() *cobra.Command {
	var f clientFlags
	var oldFile, newFile, key string
	cmd := &cobra.Command{
		Use:   "consistency --old FILE --new FILE --key KEY",
		Short: "Prove that the log only grew between two saved checkpoints",
		Long: `Consistency checks both saved checkpoints' signatures with the key, fetches
the consistency proof between their sizes and checks it here: everything the
older checkpoint covered is, unchanged and in order, in the newer one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			older, err := readCheckpoint(oldFile, key)
			if err != nil {
				return fmt.Errorf("--old: %w", err)
			}
			newer, err := readCheckpoint(newFile, key)
			if err != nil {
				return fmt.Errorf("--new: %w", err)
			}
			if older.Size > newer.Size {
				older, newer = newer, older
			}
			if older.Size == newer.Size {
				if !bytes.Equal(older.Root, newer.Root) {
					return fmt.Errorf("two different roots for %d leaves: the log was rewritten", older.Size)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "the checkpoints are of the same tree of %d leaves\n", older.Size)
				return nil
			}
			c, _, err := f.newClient(true)
			if err != nil {
				return err
			}
			var p struct {
				Hashes [][]byte `json:"hashes"`
			}
			if err := c.do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/auditLogs/proofs/consistency?from=%d&to=%d", older.Size, newer.Size), nil, &p); err != nil {
				return err
			}
			if err := audit.VerifyConsistency(older.Size, newer.Size, p.Hashes, older.Root, newer.Root); err != nil {
				return fmt.Errorf("the log did not only grow from %d to %d leaves: %w", older.Size, newer.Size, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the log of %d leaves is a prefix of the log of %d leaves\n", older.Size, newer.Size)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&oldFile, "old", "", "the earlier saved checkpoint")
	cmd.Flags().StringVar(&newFile, "new", "", "the later saved checkpoint")
	cmd.Flags().StringVar(&key, "key", "", "the log's verifier key, or @FILE")
	return cmd
}
