// Package apply owns Verity's policy as code: the tenant manifest (users,
// groups with their members, applications, service principals, named
// locations, Entra directory role assignments and Verity's own role
// assignments, written in YAML or JSON with Graph-shaped objects and
// members named rather than numbered), the plan that compares a manifest
// with the store (create, update, delete, with the fields that change),
// Apply, which writes a plan in one store transaction so that a failure
// writes nothing, and Export, which writes the directory back as a
// manifest that applies unchanged.
//
// Objects an apply creates are marked ManagedBy "apply"; only those are
// ever pruned. Objects made by hand (through the API, or the bootstrap
// administrator) are updated when a manifest lists them and differs, but
// stay hand-made: no apply ever deletes them.
//
// apply builds on store, directory, rbac and strictjson; it never imports
// api, proxy or cmd, which call it.
package apply
