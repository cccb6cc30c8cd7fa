// Package daemon is the running hookd: the lifecycle (Open binds
// listeners and opens the store synchronously; Close stops everything in
// reverse order and waits), SIGHUP reload (package config classes each key
// as live or restart-only), sd_notify, the ingest API and the admin API. The
// APIs' JSON types live in package client, which emitters and the operator CLI
// (package cli) use to talk to them; api/openapi.yaml describes every route
// (Routes lists them, and a test holds the file to the list).
//
// Data flows one way: ingest renders and stores events (package store),
// the scheduler (package delivery) picks due deliveries and records their
// outcomes back into the store. The admin API reads the store and asks it
// to requeue.
package daemon
