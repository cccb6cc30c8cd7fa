// Package config is hookd's configuration: the TOML file's shape, the one
// table of defaults (Default and builtinEndpoint), strict parsing with
// errors that name the file, line and key (Parse), validation, and
// resolution (Resolve): tokens and secrets are read and every endpoint is
// built for delivery once, so the daemon runs exactly what was checked.
//
// Adding a key means: a field with its toml tag here, its default in
// Default or builtinEndpoint, its check in validate or buildEndpoint, its
// reload class in reloadClass (keys.go; a test fails for a key without
// one), a line in config.example.toml and a word in the README.
//
// Parse has no side effects; Resolve reads files and environment
// variables. The rules shared with the APIs (the id and type grammar, log
// levels) live here too, so a mistake gets the same message wherever it
// is made.
package config
