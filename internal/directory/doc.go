// Package directory owns Verity's "who": users, groups, applications,
// service principals, named locations and directory role assignments, in
// the JSON shape of Microsoft Graph v1.0 so Graph exports import as they
// are. It defines each resource type with its strict decoding, defaults
// (Normalize) and validation (Validate, errors carrying the JSON path), the
// registry of kinds the API and policy as code iterate over, Entra's
// built-in directory role definitions (embedded), and Build, which compiles
// the stored objects into an immutable Snapshot for the decision hot path:
// lookups by id, UPN and appId, transitive group membership and directory
// roles without allocation.
//
// Verity departs from Graph where policy as code needs it: group display
// names are unique (case-insensitively), so a policy can name a group, and
// a group's members are stored in the group itself ("members"), a field
// the API strips from Graph-shaped output (Group.GraphView).
//
// directory imports only store and strictjson; it never imports api,
// proxy or cmd.
package directory
