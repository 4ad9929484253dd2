// Package store keeps Verity's state in one of two engines behind one
// interface: SQLite (embedded, the default) and PostgreSQL (shared by several
// nodes). It owns the schema, its versioned migrations, the revision counter
// and change log that drive every node's in-memory snapshot, API tokens,
// credentials and the append-only audit table.
//
// Objects are opaque JSON bodies addressed by (kind, id) with an optional
// natural key; domain packages give them meaning. store imports no other
// Verity package.
package store
