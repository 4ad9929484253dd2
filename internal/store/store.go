package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// Errors every engine returns, so callers test with errors.Is and never see
// driver-specific values.
var (
	// ErrNotFound means no object, token or credential has the given identity.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a create collided with an existing id or key, or an
	// update's expected revision no longer matches.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable wraps every failure to reach the database (connection
	// refused, lost mid-query, timeout), so the API can answer 503 and retry.
	ErrUnavailable = errors.New("store unavailable")
	// ErrSchemaTooNew means the database was migrated by a newer binary.
	ErrSchemaTooNew = errors.New("database schema is newer than this binary")
	// ErrCompacted means the change log no longer holds the requested range;
	// the reader must reload everything.
	ErrCompacted = errors.New("change log compacted")
)

// Object is one stored resource: a user, group, application, named location,
// role assignment... The store does not interpret Body; domain packages own
// its shape and validation.
type Object struct {
	Kind string // resource kind, e.g. "user"; lower case, stable
	ID   string // stable identifier (a UUID), unique within Kind
	// Key is an optional natural key, unique within Kind when not empty
	// (a lower-cased userPrincipalName, an appId). The store compares it
	// byte for byte; callers normalise it.
	Key string
	// ManagedBy names the tool that owns the object ("apply" for policy as
	// code), or "" when it was made by hand. Apply prunes only its own.
	ManagedBy string
	Body      []byte // canonical JSON
	Revision  int64  // store revision of the last write to this object
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Op is the kind of a change.
type Op string

const (
	// OpPut records a create, put or update.
	OpPut Op = "put"
	// OpDelete records a delete.
	OpDelete Op = "delete"
)

// Change records one write in the change log; Revision orders all writes of
// the store, across every node.
type Change struct {
	Revision int64
	Kind     string
	ID       string
	Op       Op
}

// Token is an API bearer token. Only the SHA-256 of the secret is kept.
type Token struct {
	Hash        []byte // sha256 of the secret
	PrincipalID string
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Description string
	// AMR says how the principal signed in for the token (OpenID Connect
	// amr values: "pwd", "otp", "mfa", "hwk", ...).
	AMR []string
}

// Credential is a secret that proves a principal's identity, kept apart from
// the directory objects so it never reaches a snapshot, an export or a log.
type Credential struct {
	PrincipalID string
	Type        string // "password"
	Hash        string // encoded hash (argon2id PHC string); never the secret
	UpdatedAt   time.Time
}

// Record is state that is not tenant configuration: sessions, sign-in
// flows, authorization codes, refresh tokens, second-factor secrets,
// signing keys. Records do not bump the store revision, and never reach a
// snapshot, the change log or an export. Body is opaque to the store
// (callers seal secrets before they get here).
type Record struct {
	Kind    string
	ID      string
	Subject string // what the record belongs to (a principal, a token family), for listing and deleting together
	Version int64  // set by the store: 1 on create, +1 on every write
	Body    []byte
	// CreatedAt and UpdatedAt are set by the store. A zero ExpiresAt
	// never expires; an expired record reads as absent.
	CreatedAt, UpdatedAt, ExpiresAt time.Time
}

// AuditEvent is one entry of the append-only audit table.
type AuditEvent struct {
	Seq int64 // assigned by the store on append
	// Index is the event's leaf index in the audit log's Merkle tree,
	// assigned on append without gaps in the order events are written; -1
	// when unknown (an event read back that has none).
	Index     int64
	Time      time.Time
	RequestID string
	Actor     string // principal id, or "" when unauthenticated
	Action    string // e.g. "users.create", "auth.login"
	Target    string // resource path, e.g. "/users/2b1c..."
	Result    string // "success", "denied", "failure"
	Status    int    // HTTP status when the event came from the API
	Details   []byte // JSON object, never secrets
}

// AuditQuery selects audit events, newest first.
type AuditQuery struct {
	AfterSeq  int64 // only events with Seq > AfterSeq when > 0
	BeforeSeq int64 // only events with Seq < BeforeSeq when > 0 (paging back)
	Actor     string
	Action    string
	Target    string
	Result    string
	// Since and Until bound the event time (inclusive) when not zero.
	Since, Until time.Time
	Limit        int // default 100, maximum 1000
}

// ListOptions pages through one kind in ID order.
type ListOptions struct {
	AfterID string // exclusive cursor
	Limit   int    // 0 means no limit
}

// Reader reads objects. Inside Update it sees the transaction's own writes.
type Reader interface {
	// Get returns the object kind/id; ErrNotFound when absent.
	Get(ctx context.Context, kind, id string) (Object, error)
	// GetByKey returns the object of kind with natural key key;
	// ErrNotFound when absent or key is empty.
	GetByKey(ctx context.Context, kind, key string) (Object, error)
	// List returns objects of kind in byte order of ID.
	List(ctx context.Context, kind string, opts ListOptions) ([]Object, error)
}

// Tx is a write transaction. All writes of one Update share one new store
// revision and commit or roll back together.
type Tx interface {
	Reader
	// Create inserts obj; ErrConflict when its ID or Key exists in its kind.
	Create(ctx context.Context, obj Object) error
	// Put inserts or replaces obj by (Kind, ID); ErrConflict when Key is
	// held by another object of the kind.
	Put(ctx context.Context, obj Object) error
	// Update replaces an existing object; ErrNotFound when absent,
	// ErrConflict when ifRevision > 0 and differs from the stored revision.
	Update(ctx context.Context, obj Object, ifRevision int64) error
	// Delete removes an object; ErrNotFound when absent.
	Delete(ctx context.Context, kind, id string) error
	// Revision is the revision this transaction's writes will carry.
	Revision() int64
}

// Store is what every engine provides. All methods take ctx first and wrap
// database failures in ErrUnavailable.
type Store interface {
	Reader
	// Update runs fn in one serializable write transaction. When fn returns
	// nil and wrote anything, the store revision is bumped once, every
	// write is recorded in the change log under it, and listeners are
	// notified after commit. Returns the new revision (or the current one
	// when fn wrote nothing). An error from fn rolls everything back and
	// is returned as is. Updates run one at a time across all nodes; fn
	// must not call Update, nor use tx after returning.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) (int64, error)
	// View runs fn against one consistent read view of all objects and
	// passes the revision that view reflects.
	View(ctx context.Context, fn func(ctx context.Context, r Reader, revision int64) error) error
	// Revision is the latest committed revision.
	Revision(ctx context.Context) (int64, error)
	// Changes lists changes with Revision > since in order, at most limit
	// (<= 0: no limit); ErrCompacted when since predates the retained log.
	// A revision is never split: when limit would cut the first revision
	// of the result it is returned whole, beyond limit; when it would cut
	// a later one, the result ends before it.
	Changes(ctx context.Context, since int64, limit int) ([]Change, error)
	// Watch returns a channel that receives the latest revision whenever
	// another writer (on this node or any other) commits, coalescing bursts.
	// It is closed when ctx ends. Delivery is best effort: a receiver must
	// still read Revision/Changes, the channel only says "look now".
	Watch(ctx context.Context) <-chan int64

	// CreateToken stores t (a zero ExpiresAt never expires); ErrConflict
	// when its hash exists.
	CreateToken(ctx context.Context, t Token) error
	// GetToken returns the token with this hash; ErrNotFound also when
	// expired (an expired token is deleted).
	GetToken(ctx context.Context, hash []byte) (Token, error)
	// DeleteToken removes one token; ErrNotFound when absent.
	DeleteToken(ctx context.Context, hash []byte) error
	// DeletePrincipalTokens removes every token of a principal.
	DeletePrincipalTokens(ctx context.Context, principalID string) error

	// SetCredential inserts or replaces a credential by (PrincipalID, Type).
	SetCredential(ctx context.Context, c Credential) error
	// GetCredential returns one credential; ErrNotFound when absent.
	GetCredential(ctx context.Context, principalID, typ string) (Credential, error)
	// DeleteCredentials removes every credential of a principal.
	DeleteCredentials(ctx context.Context, principalID string) error

	// CreateRecord inserts r (version 1); ErrConflict when it exists.
	CreateRecord(ctx context.Context, r Record) (Record, error)
	// GetRecord returns a live record; ErrNotFound when absent or expired.
	GetRecord(ctx context.Context, kind, id string) (Record, error)
	// UpdateRecord replaces a live record if its version is still
	// r.Version (ErrConflict otherwise) and returns the new version.
	UpdateRecord(ctx context.Context, r Record) (Record, error)
	// PutRecord inserts or replaces a record whatever its version.
	PutRecord(ctx context.Context, r Record) (Record, error)
	// DeleteRecord removes one record; ErrNotFound when absent.
	DeleteRecord(ctx context.Context, kind, id string) error
	// DeleteRecords removes every record of kind with subject.
	DeleteRecords(ctx context.Context, kind, subject string) (int, error)
	// ListRecords lists the live records of kind with subject, oldest
	// first, at most limit (<= 0 or > 1000: 1000).
	ListRecords(ctx context.Context, kind, subject string, limit int) ([]Record, error)

	// AppendAuditAsync queues e for the next group commit without waiting;
	// ErrAuditBacklog when the audit log cannot keep up.
	AppendAuditAsync(ctx context.Context, e AuditEvent) error
	// AppendAudit appends e and returns the seq the database assigned.
	AppendAudit(ctx context.Context, e AuditEvent) (int64, error)
	// ListAudit returns the events q selects, newest first.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)

	// The audit log's Merkle tree (auditlog.go): the stored head, tiles
	// and events in leaf order, and signed checkpoints.
	AuditHead(ctx context.Context) (AuditHead, error)
	AuditTile(ctx context.Context, level, idx uint64) ([]byte, error)
	AuditTiles(ctx context.Context, keys [][2]uint64) (map[[2]uint64][]byte, error)
	AuditLeaves(ctx context.Context, from uint64, limit int) ([]AuditEvent, error)
	SaveAuditCheckpoint(ctx context.Context, c AuditCheckpoint) error
	GetAuditCheckpoint(ctx context.Context, size uint64) (AuditCheckpoint, error)
	LatestAuditCheckpoint(ctx context.Context) (AuditCheckpoint, error)
	ListAuditCheckpoints(ctx context.Context, from, to uint64, limit int) ([]AuditCheckpoint, error)
	PruneAudit(ctx context.Context, before time.Time, limit uint64) (from, through uint64, err error)
	SetAuditCheckpointNote(ctx context.Context, size uint64, note string) error

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Engine names the engine: "sqlite" or "postgres".
	Engine() string
	Close() error
}

// EachPrefixed calls fn for the objects of kind whose ID starts with
// prefix, in ID order, from just after after ("" for the first), reading
// only that range; fn returns false to stop. IDs built as
// owner + separator + unique part make an owner's objects one range.
func EachPrefixed(ctx context.Context, r Reader, kind, prefix, after string, fn func(Object) (bool, error)) error {
	const page = 500
	cursor := prefix
	if after > cursor {
		cursor = after
	}
	for {
		objs, err := r.List(ctx, kind, ListOptions{AfterID: cursor, Limit: page})
		if err != nil {
			return err
		}
		for _, o := range objs {
			if !strings.HasPrefix(o.ID, prefix) {
				return nil
			}
			if more, err := fn(o); err != nil || !more {
				return err
			}
		}
		if len(objs) < page {
			return nil
		}
		cursor = objs[len(objs)-1].ID
	}
}

// Each calls fn for every object of kind in ID order, reading r a page at
// a time, and stops at fn's first error.
func Each(ctx context.Context, r Reader, kind string, fn func(Object) error) error {
	const page = 500
	after := ""
	for {
		objs, err := r.List(ctx, kind, ListOptions{AfterID: after, Limit: page})
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := fn(o); err != nil {
				return err
			}
		}
		if len(objs) < page {
			return nil
		}
		after = objs[len(objs)-1].ID
	}
}
