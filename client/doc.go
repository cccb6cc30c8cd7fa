// Package client is a typed Go client for hookd's HTTP APIs.
//
// The request and response types here are the ones the daemon's handlers
// fill, so the server and every client (the hookd CLI among them) share
// one definition of each JSON shape: renaming a field breaks the build
// instead of a caller silently reading nothing.
//
// Admin talks to the admin API ([admin] listen). An error answer comes
// back as *Error with the HTTP status and the API's code; a daemon that
// does not answer as an error wrapping ErrUnreachable:
//
//	a := client.NewAdmin("127.0.0.1:8526", client.Options{Token: tok})
//	ev, err := a.Event(ctx, id)
//	switch {
//	case errors.Is(err, client.ErrNotFound):
//	case errors.Is(err, client.ErrUnreachable):
//	}
//
// Ingest talks to the ingest API ([ingest] listen): Send and SendBatch
// store events, retrying what hookd refuses only for now (429, 503) and
// requests that got no answer, with the same event id, so an emitter
// neither loses nor duplicates an event (see Ingest and ExampleIngest_Send).
//
// api/openapi.yaml in the repository describes both APIs for clients in
// other languages.
package client
