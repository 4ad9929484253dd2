package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/verityhq/verity/internal/directory"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// applications registers the application collection. Its reads show each
// application's passwordCredentials, which live in the client secret
// records rather than in the object, and deleting an application removes
// its secrets.
func (s *Server) applications(base string) {
	k := directoryKind(directory.Applications, false, "Verity.Directory/applications", "/directory/applications")
	first := len(s.routes)
	s.collection(base, k)
	for i := first; i < len(s.routes); i++ {
		switch rt := &s.routes[i]; rt.Name {
		case "applications.list":
			rt.handler = s.withSecretMetadata(k, s.listObjects)
		case "applications.get":
			rt.handler = s.withSecretMetadata(k, s.getObject)
		case "applications.delete":
			rt.handler = s.deleteApplication(k, rt.handler)
		}
	}
}

// withSecretMetadata serves a read of applications whose view carries the
// metadata of their client secrets, read from the store for this request.
// A view that cannot read them fails to encode, and writeJSON encodes
// before it writes, so the client gets the error rather than an object
// without its credentials.
func (s *Server) withSecretMetadata(k resourceKind, handler func(resourceKind) handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		withSecrets := k
		withSecrets.view = func(res directory.Resource) any {
			app := res.(*directory.Application)
			creds, err := directory.ClientSecrets(r.Context(), s.opts.Store, app)
			if err != nil {
				return failedView{err}
			}
			app.PasswordCredentials = creds
			return app
		}
		return handler(withSecrets)(w, r, c)
	}
}

// failedView is a view that could not be built: encoding it fails with err.
type failedView struct{ err error }

// MarshalJSON implements json.Marshaler.
func (v failedView) MarshalJSON() ([]byte, error) { return nil, v.err }

// deleteApplication deletes the application, then its client secrets.
// Once the application is gone its secrets no longer verify (they are
// bound to it), so a failure here leaves only dead records, which expire.
func (s *Server) deleteApplication(k resourceKind, del handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		var appID string
		if obj, err := find(r.Context(), s.opts.Store, k, r.PathValue("id")); err == nil {
			if app, err := directory.Applications.FromObject(obj); err == nil {
				appID = app.AppID
			}
		}
		if err := del(w, r, c); err != nil || appID == "" {
			return err
		}
		if _, err := directory.DeleteClientSecrets(r.Context(), s.opts.Store, appID); err != nil {
			s.log.Warn("delete application: cannot remove client secrets", "requestId", c.requestID, "appId", appID, "err", err)
		}
		return nil
	}
}

// addPasswordRequest is the body of Graph's application: addPassword.
type addPasswordRequest struct {
	PasswordCredential *directory.PasswordCredentialRequest `json:"passwordCredential"`
}

// addedPassword is addPassword's answer: the new credential with its
// secret, which is shown this once.
type addedPassword struct {
	directory.PasswordCredential
	SecretText string `json:"secretText"`
}

// addPassword adds a client secret to an application, as Graph's
// addPassword does. The secret is in the response and nowhere else: the
// store keeps its hash, the audit record its keyId.
func (s *Server) addPassword(w http.ResponseWriter, r *http.Request, c *call) error {
	var req addPasswordRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	app, err := s.application(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var want directory.PasswordCredentialRequest
	if req.PasswordCredential != nil {
		want = *req.PasswordCredential
	}
	cred, secret, err := directory.AddClientSecret(r.Context(), s.opts.Store, app, want)
	var fe *strictjson.FieldError
	switch {
	case errors.As(err, &fe):
		return invalid(strictjson.Errorf(strictjson.Join("passwordCredential", fe.Path), "%s", fe.Message))
	case errors.Is(err, directory.ErrTooManyClientSecrets):
		return problemf(http.StatusConflict, CodeConflict, "the application already has %d client secrets, the most allowed; remove one with removePassword first", directory.MaxClientSecrets)
	case err != nil:
		return err
	}
	c.details = map[string]any{"id": app.ID, "appId": app.AppID, "keyId": cred.KeyID}
	return writeJSON(w, http.StatusOK, addedPassword{PasswordCredential: cred, SecretText: secret})
}

// removePasswordRequest is the body of Graph's application: removePassword.
type removePasswordRequest struct {
	KeyID string `json:"keyId"`
}

// removePassword removes one client secret of an application; it stops
// verifying at once.
func (s *Server) removePassword(w http.ResponseWriter, r *http.Request, c *call) error {
	var req removePasswordRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	switch {
	case req.KeyID == "":
		return invalid(strictjson.Errorf("keyId", "required"))
	case !directory.IsGUID(req.KeyID):
		return invalid(strictjson.Errorf("keyId", "must be a GUID such as 00000000-0000-0000-0000-000000000000"))
	}
	app, err := s.application(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	keyID := strings.ToLower(req.KeyID)
	c.details = map[string]any{"id": app.ID, "appId": app.AppID, "keyId": keyID}
	if err := directory.RemoveClientSecret(r.Context(), s.opts.Store, app, keyID); errors.Is(err, store.ErrNotFound) {
		return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "the application has no client secret with keyId " + keyID, Target: "keyId", Err: err}
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// application loads the application the {id} path value names.
func (s *Server) application(ctx context.Context, id string) (*directory.Application, error) {
	k := directoryKind(directory.Applications, false, "", "")
	obj, err := find(ctx, s.opts.Store, k, id)
	if err != nil {
		return nil, notFound(err, k, id)
	}
	return directory.Applications.FromObject(obj)
}
