// Package condition parses and evaluates the ABAC conditions of Azure role
// assignments and role definitions (condition version "2.0"), such as
//
//	((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'}))
//	 OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'))
//
// It owns the condition language: Parse turns an expression into an
// immutable *Condition, Condition.Evaluate decides it for one *Request (the
// action being checked and the attribute values by source), and
// Condition.String gives the canonical form that Verity stores and compares.
// Evaluation does not allocate when the request carries typed attribute
// values.
//
// Semantics follow Microsoft's "Azure role assignment condition format and
// syntax" page (conditions-format.md, see testdata/README.md for the version
// read). Where Verity differs or the page is silent, the doc comment of the
// name concerned says so.
//
// condition imports the standard library only; it must never import another
// Verity package (the rbac package above it imports this one).
package condition
