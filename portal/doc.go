// Package portal is the customer portal (SPEC §12): web pages and a JSON
// API under /api/ that a platform hands to one tenant through a magic
// link, and the same UI for operators at /ui/ on the admin listener.
//
// It holds only its pages, its session and CSRF middleware and its
// routes. Every read and write goes through api.Operations with the
// session's scope, so tenant isolation is enforced once, below this
// package, where data is read and written: a handler here cannot forget
// it. Pages are server-rendered html/template with one small script for
// the actions (progressive enhancement); every asset is embedded, so the
// portal makes no request outside hookd and works offline.
//
// Sessions live in the database (store/portal.go), keyed by the SHA-256
// of the cookie's 256 random bits, so logout and a tenant's deletion end
// them at once. A magic link's token is signed (HMAC-SHA256 with
// [portal] key_file's key or one generated once and kept sealed in the
// database) and carries its id, tenant, capabilities and expiry; its id
// is stored once used. Every request passes the same middleware in
// serve.go: security headers, session, capability, then CSRF (token,
// JSON content type, same origin) for every method but GET.
package portal
