package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/verityhq/verity/internal/config"
	"github.com/verityhq/verity/internal/detect"
	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/oidc"
	"github.com/verityhq/verity/internal/signin"
	"github.com/verityhq/verity/internal/store"
)

// nodeActions carries out detection's automated responses on this
// node's store: sessions, grants and API tokens revoked, accounts and
// service principals disabled in the directory (each change audited in
// its own transaction), password changes required.
type nodeActions struct{ st store.Store }

func (a nodeActions) RevokeSessions(ctx context.Context, userID string) (bool, error) {
	sessions, err := signin.RevokeSessions(ctx, a.st, userID)
	if err != nil {
		return false, err
	}
	grants, err := oidc.RevokeUserGrants(ctx, a.st, userID)
	if err != nil {
		return false, err
	}
	if err := a.st.DeletePrincipalTokens(ctx, userID); err != nil {
		return false, err
	}
	return sessions+grants > 0, nil
}

func (a nodeActions) BlockSignIn(ctx context.Context, userID, reason string) (bool, error) {
	return a.disable(ctx, directory.Users.Name(), userID, reason, func(body []byte) ([]byte, bool, error) {
		u, err := directory.Users.FromObject(store.Object{Kind: directory.Users.Name(), ID: userID, Body: body})
		if err != nil {
			return nil, false, err
		}
		if !u.Enabled() {
			return nil, false, nil
		}
		off := false
		u.AccountEnabled = &off
		b, err := json.Marshal(u)
		return b, true, err
	})
}

func (a nodeActions) DisableServicePrincipal(ctx context.Context, appID, reason string) (bool, error) {
	sp, err := a.st.GetByKey(ctx, directory.ServicePrincipals.Name(), strings.ToLower(appID))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // no service principal: nothing signs in as the application
	}
	if err != nil {
		return false, err
	}
	return a.disable(ctx, directory.ServicePrincipals.Name(), sp.ID, reason, func(body []byte) ([]byte, bool, error) {
		s, err := directory.ServicePrincipals.FromObject(store.Object{Kind: directory.ServicePrincipals.Name(), ID: sp.ID, Body: body})
		if err != nil {
			return nil, false, err
		}
		if !s.Enabled() {
			return nil, false, nil
		}
		off := false
		s.AccountEnabled = &off
		b, err := json.Marshal(s)
		return b, true, err
	})
}

// disable rewrites one directory object with change (which says whether
// anything changed) in a transaction that carries its audit record.
func (a nodeActions) disable(ctx context.Context, kind, id, reason string, change func([]byte) ([]byte, bool, error)) (bool, error) {
	changed := false
	ctx, _ = store.AuditWith(ctx, func(rev int64, changes []store.Change) store.AuditEvent {
		details, _ := json.Marshal(map[string]any{"reason": reason, "revision": rev, "accountEnabled": false})
		return store.AuditEvent{Time: time.Now().UTC(), Actor: detect.ResponseActor, Action: "detect.disable" + upperFirst(kind),
			Target: "/" + kind + "s/" + id, Result: "success", Details: details}
	})
	_, err := a.st.Update(ctx, func(ctx context.Context, tx store.Tx) error {
		obj, err := tx.Get(ctx, kind, id)
		if err != nil {
			return err
		}
		body, ok, err := change(obj.Body)
		if err != nil || !ok {
			return err
		}
		obj.Body, changed = body, true
		return tx.Update(ctx, obj, obj.Revision)
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil // deleted meanwhile: it signs in nowhere
	}
	return changed, err
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (a nodeActions) RequirePasswordChange(ctx context.Context, userID string) (bool, error) {
	m, err := signin.MustChangePassword(ctx, a.st, userID)
	if err != nil || m {
		return false, err
	}
	return true, signin.SetMustChangePassword(ctx, a.st, userID, true)
}

// detectionSetup is detection as configured: makers of fresh detectors
// (the engine makes them anew whenever it starts reading) and the
// playbooks.
type detectionSetup struct {
	signIns   func() []detect.Detector
	audit     func() []detect.AuditDetector
	playbooks []detect.Playbook
}

// named is what detectors of both kinds are to configuration.
type named interface{ Name() string }

// configured applies cfg's settings to ds and drops the disabled ones.
func configured[D named](ds []D, cfg config.Detect) ([]D, error) {
	var out []D
	for _, d := range ds {
		if raw, ok := cfg.Detectors[d.Name()]; ok {
			if err := detect.Configure(d, raw); err != nil {
				return nil, fmt.Errorf("detect.detectors.%s.%w", d.Name(), err)
			}
		}
		if !slices.Contains(cfg.Disabled, d.Name()) {
			out = append(out, d)
		}
	}
	return out, nil
}

// detection builds the node's detectors and playbooks from cfg.Detect;
// every mistake is an error naming its path.
func detection(cfg config.Detect) (detectionSetup, error) {
	var anonymous []string
	if cfg.AnonymousAddressList != "" {
		f, err := os.Open(cfg.AnonymousAddressList)
		if err != nil {
			return detectionSetup{}, fmt.Errorf("detect.anonymousAddressList: %w", err)
		}
		list, err := detect.LoadAddressList(f)
		f.Close()
		if err != nil {
			return detectionSetup{}, fmt.Errorf("detect.anonymousAddressList: %w", err)
		}
		for _, p := range list {
			anonymous = append(anonymous, p.String())
		}
	}
	known := detect.DetectorNames()
	for name := range cfg.Detectors {
		if !slices.Contains(known, name) {
			return detectionSetup{}, fmt.Errorf("detect.detectors.%s: no such detector", name)
		}
	}
	for i, name := range cfg.Disabled {
		if !slices.Contains(known, name) {
			return detectionSetup{}, fmt.Errorf("detect.disabled[%d]: no such detector %q", i, name)
		}
	}
	signIns := func() ([]detect.Detector, error) {
		ds := detect.DefaultDetectors()
		for _, d := range ds {
			if a, ok := d.(*detect.AnonymousIP); ok {
				a.List = append(a.List, anonymous...)
			}
		}
		return configured(ds, cfg)
	}
	audit := func() ([]detect.AuditDetector, error) { return configured(detect.DefaultAuditDetectors(), cfg) }
	if _, err := signIns(); err != nil {
		return detectionSetup{}, err
	}
	if _, err := audit(); err != nil {
		return detectionSetup{}, err
	}
	setup := detectionSetup{
		signIns: func() []detect.Detector { ds, _ := signIns(); return ds }, // checked above
		audit:   func() []detect.AuditDetector { ds, _ := audit(); return ds },
	}
	for i, c := range cfg.Playbooks {
		p := detect.Playbook{Name: c.Name, Detectors: c.Detectors, MinSeverity: c.MinSeverity, Actions: c.Actions,
			WebhookURL: c.WebhookURL, DryRun: c.DryRun}
		if c.WebhookSecretFile != "" {
			b, err := os.ReadFile(c.WebhookSecretFile)
			if err != nil {
				return detectionSetup{}, fmt.Errorf("detect.playbooks[%d].webhookSecretFile: %w", i, err)
			}
			p.WebhookSecret = strings.TrimSpace(string(b))
		}
		if err := p.Validate(); err != nil {
			return detectionSetup{}, fmt.Errorf("detect.playbooks[%d].%w", i, err)
		}
		for _, d := range p.Detectors {
			if !slices.Contains(known, d) {
				return detectionSetup{}, fmt.Errorf("detect.playbooks[%d].detectors: no such detector %q", i, d)
			}
		}
		setup.playbooks = append(setup.playbooks, p)
	}
	return setup, nil
}
