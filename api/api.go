// Package api holds hookd's API description, api/openapi.yaml (OpenAPI
// 3.1): the ingest and admin JSON APIs, route by route, with every request
// and answer shape. The daemon serves it at GET /openapi.yaml on the admin
// listener; the end-to-end tests check each answer they get against it, so
// the file cannot drift from the code.
//
// It also holds the contract both HTTP layers (the admin API and the
// customer portal) call: Operations, each bound to a Scope, and the Error
// they answer with. The daemon implements Operations; tenant isolation is
// enforced there, once, where data is read and written.
package api

import _ "embed"

// OpenAPI is api/openapi.yaml, embedded so the binary serves the
// description of exactly the code it was built from.
//
//go:embed openapi.yaml
var OpenAPI []byte
