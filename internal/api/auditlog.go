package api

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/verityhq/verity/internal/audit"
	"github.com/verityhq/verity/internal/store"
)

// The tamper-evident audit log (docs/audit.md): its identity and head,
// signed checkpoints, and inclusion and consistency proofs, which a client
// verifies against a checkpoint it keeps.

func (s *Server) auditLogEnabled() error {
	if s.opts.AuditLog == nil {
		return problemf(http.StatusNotFound, CodeNotFound, "this node does not serve the audit log's proofs")
	}
	return nil
}

// auditLogInfo: GET /auditLogs/log — the log's name, checkpoint verifier
// key and current size and root.
func (s *Server) auditLogInfo(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.auditLogEnabled(); err != nil {
		return err
	}
	head, err := s.opts.Store.AuditHead(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"origin": s.opts.AuditLog.Origin(), "verifierKey": s.opts.AuditLog.VerifierKey(),
		"treeSize": head.Size, "rootHash": base64.StdEncoding.EncodeToString(head.Root),
	})
}

// getCheckpoint: GET /auditLogs/checkpoint[?treeSize=N] — the latest
// signed checkpoint (or the one of size N) as the signed note, text/plain,
// ready to save.
func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.auditLogEnabled(); err != nil {
		return err
	}
	var cp store.AuditCheckpoint
	var err error
	if v := r.URL.Query().Get("treeSize"); v != "" {
		n, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil || n == 0 {
			return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be a positive integer", Target: "treeSize"}
		}
		cp, err = s.opts.Store.GetAuditCheckpoint(r.Context(), n)
	} else {
		cp, err = s.opts.Store.LatestAuditCheckpoint(r.Context())
	}
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, CodeNotFound, "no checkpoint of that size")
	}
	if err != nil {
		return err
	}
	return writeNote(w, http.StatusOK, cp.Note)
}

// createCheckpoint: POST /auditLogs/checkpoint — sign one now.
func (s *Server) createCheckpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.auditLogEnabled(); err != nil {
		return err
	}
	cp, err := s.opts.AuditLog.Checkpoint(r.Context())
	if err != nil {
		return err
	}
	return writeNote(w, http.StatusCreated, cp.Note)
}

// cosignCheckpoint: POST /auditLogs/checkpoint/cosignature — a witness
// hands back a checkpoint it verified and signed (text/plain, the signed
// note); the stored checkpoint keeps the configured witnesses' signatures.
func (s *Server) cosignCheckpoint(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.auditLogEnabled(); err != nil {
		return err
	}
	if len(s.opts.AuditWitnesses) == 0 {
		return problemf(http.StatusConflict, CodeConflict, "no witness is configured (audit.witnesses)")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return &Problem{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge, Message: "the checkpoint is too large"}
	}
	note, signed, err := s.opts.AuditLog.Cosign(r.Context(), body, s.opts.AuditWitnesses)
	if errors.Is(err, audit.ErrBadCosignature) {
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: err.Error()}
	}
	if errors.Is(err, store.ErrNotFound) {
		return problemf(http.StatusNotFound, CodeNotFound, "no checkpoint of that size")
	}
	if err != nil {
		return err
	}
	if c.details == nil {
		c.details = map[string]any{}
	}
	c.details["witnesses"] = signed
	return writeNote(w, http.StatusOK, note)
}

func writeNote(w http.ResponseWriter, status int, note string) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write([]byte(note))
	return err
}

// inclusionProof: GET /auditLogs/proofs/inclusion?index=I[&treeSize=N] —
// the event at I, its leaf bytes and hash, and the audit path to the root
// of the tree of N leaves (the current tree without treeSize).
func (s *Server) inclusionProof(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.auditLogEnabled(); err != nil {
		return err
	}
	index, err := uintParam(r, "index", true)
	if err != nil {
		return err
	}
	size, err := uintParam(r, "treeSize", false)
	if err != nil {
		return err
	}
	p, err := s.opts.AuditLog.Inclusion(r.Context(), index, size)
	if errors.Is(err, audit.ErrOutOfRange) || errors.Is(err, store.ErrNotFound) {
		return &Problem{Status: http.StatusNotFound, Code: CodeNotFound, Message: err.Error(), Target: "index"}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{
		"leafIndex": p.Index, "treeSize": p.TreeSize, "leafHash": base64.StdEncoding.EncodeToString(p.LeafHash),
		"hashes": b64s(p.Hashes), "leaf": base64.StdEncoding.EncodeToString(p.Leaf),
	})
}

// consistencyProof: GET /auditLogs/proofs/consistency?from=M[&to=N] — the
// proof that the tree of M leaves is a prefix of the tree of N (the
// current tree without to).
func (s *Server) consistencyProof(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.auditLogEnabled(); err != nil {
		return err
	}
	from, err := uintParam(r, "from", true)
	if err != nil {
		return err
	}
	to, err := uintParam(r, "to", false)
	if err != nil {
		return err
	}
	size2, hashes, err := s.opts.AuditLog.Consistency(r.Context(), from, to)
	if errors.Is(err, audit.ErrOutOfRange) {
		return &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: err.Error(), Target: "from"}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": size2, "hashes": b64s(hashes)})
}

func uintParam(r *http.Request, name string, required bool) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return 0, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "is required", Target: name}
		}
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > 1<<62 {
		return 0, &Problem{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Message: "must be a non-negative integer", Target: name}
	}
	return n, nil
}

func b64s(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}
