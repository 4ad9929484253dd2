package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/verityhq/verity/internal/apply"
	"github.com/verityhq/verity/internal/store"
	"github.com/verityhq/verity/internal/strictjson"
)

// Stable error codes. Clients branch on these, never on messages.
const (
	CodeInvalidRequest       = "InvalidRequest"
	CodeUnauthenticated      = "Unauthenticated"
	CodeForbidden            = "Forbidden"
	CodeNotFound             = "NotFound"
	CodeMethodNotAllowed     = "MethodNotAllowed"
	CodeConflict             = "Conflict"
	CodePreconditionFailed   = "PreconditionFailed"
	CodePayloadTooLarge      = "PayloadTooLarge"
	CodeUnsupportedMediaType = "UnsupportedMediaType"
	CodeTooManyRequests      = "TooManyRequests"
	// Sign-in refusals of POST /api/v1/login that say what to do next.
	CodeMFARequired            = "MfaRequired"              // send a code from the authenticator app as "otp"
	CodeMFAFailed              = "MfaFailed"                // the code is wrong or was used already
	CodeConditionalAccess      = "ConditionalAccessBlocked" // a policy blocks this sign-in, or asks what the API cannot do
	CodePasswordChangeRequired = "PasswordChangeRequired"   // sign in once in a browser to set a new password
	CodeStoreUnavailable       = "StoreUnavailable"
	CodeInternal               = "InternalError"
)

// Problem is an error with everything the API edge needs: an HTTP status,
// a stable code, a message for people and the JSON path it concerns.
type Problem struct {
	Status  int
	Code    string
	Message string
	Target  string
	// Details lists further problems of the same request (Graph's
	// error.details), e.g. every invalid entry of a manifest.
	Details []*Problem
	Err     error // cause, logged but never sent
}

func (p *Problem) Error() string {
	if p.Target != "" {
		return p.Target + ": " + p.Message
	}
	return p.Message
}

func (p *Problem) Unwrap() error { return p.Err }

func problemf(status int, code, format string, args ...any) *Problem {
	return &Problem{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// invalid turns a decoding or validation error into a 400 that names the
// JSON path.
func invalid(err error) *Problem {
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: fe.Message, Target: fe.Path, Err: err}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &Problem{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), Err: err}
	}
	return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: err.Error(), Err: err}
}

// toProblem maps any error to a Problem; store errors get their statuses,
// anything unknown becomes a 500 whose message leaks nothing.
func toProblem(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var fe *strictjson.FieldError
	var mbe *http.MaxBytesError
	var ae *apply.Error
	switch {
	case errors.As(err, &ae):
		p := &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: ae.Message, Target: ae.Path, Err: err}
		if ae.Conflict {
			p.Status, p.Code = http.StatusConflict, CodeConflict
		}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap()[1:] {
				if errors.As(e, &ae) {
					p.Details = append(p.Details, &Problem{Code: CodeInvalidRequest, Message: ae.Message, Target: ae.Path})
				}
			}
		}
		return p
	case errors.As(err, &fe), errors.As(err, &mbe):
		return invalid(err)
	case errors.Is(err, store.ErrNotFound):
		return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: "resource not found", Err: err}
	case errors.Is(err, store.ErrConflict):
		return &Problem{Status: http.StatusConflict, Code: CodeConflict, Message: "the resource conflicts with an existing one (same id or unique name) or was changed concurrently", Err: err}
	case errors.Is(err, store.ErrUnavailable):
		return &Problem{Status: http.StatusServiceUnavailable, Code: CodeStoreUnavailable, Message: "the database is unavailable; retry shortly", Err: err}
	}
	return &Problem{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

type problemBody struct {
	Error problemDetail `json:"error"`
}

type problemDetail struct {
	Code       string       `json:"code"`
	Message    string       `json:"message"`
	Target     string       `json:"target,omitempty"`
	Details    []detailItem `json:"details,omitempty"`
	InnerError innerError   `json:"innerError"`
}

type detailItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

type innerError struct {
	RequestID string `json:"request-id"`
	Date      string `json:"date"`
}
