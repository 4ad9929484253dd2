// Package store keeps Verity's state in one of two engines behind one
// interface: SQLite (embedded, the default) and PostgreSQL (shared by several
// nodes). It owns the schema, its versioned migrations, the revision counter
// and change log that drive every node's in-memory snapshot, API tokens,
// credentials and the append-only audit table.
//
// Objects are opaque JSON bodies addressed by (kind, id) with an optional
// natural key; domain packages give them meaning. store imports no other
// Verity package.
//
// Open picks the engine from Config.DSN and migrates the schema under a
// lock (a PostgreSQL advisory lock, or SQLite's write lock). Every writing
// Update bumps one revision row inside its transaction, which serializes
// writers on every node and makes revisions commit in order; each write is
// logged in the change log under that revision. Nodes learn of new
// revisions through Watch (PostgreSQL LISTEN/NOTIFY plus polling; for
// SQLite, in-process wake-ups plus polling) and read what changed with
// Changes. The SQL is written once with "?" placeholders and shared by
// both engines; engine files hold only connections, locking, notification
// and error classification. Tests use the real engines through the
// storetest package.
package store
