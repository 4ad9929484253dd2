// Package apply owns Verity's policy as code: the tenant manifest (users,
// groups with their members, applications, service principals, named
// locations, identity providers, the proxy's app routes, Entra directory
// role assignments and Verity's own role assignments, written in YAML or
// JSON with Graph-shaped objects and members named rather than numbered),
// the plan that compares a manifest with the store (create, update,
// delete, with the fields that change), Apply, which writes a plan in one
// store transaction so that a failure writes nothing, and Export, which
// writes the directory back as a manifest that applies unchanged.
//
// Identity providers' client secrets never come from a manifest file:
// ParseFiles reads the environment variable an entry's clientSecretFromEnv
// names, the server receives the value in the request, and Apply seals and
// stores it (in a record, after the commit) only when it differs from the
// stored one. Exports never carry secrets.
//
// Objects an apply creates are marked ManagedBy "apply"; only those are
// ever pruned. Objects made by hand (through the API, or the bootstrap
// administrator) are updated when a manifest lists them and differs, but
// stay hand-made: no apply ever deletes them.
//
// apply builds on store, directory, rbac and strictjson; it never imports
// api, proxy or cmd, which call it.
package apply
