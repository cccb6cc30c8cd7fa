package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"hookd/client"
)

// The endpoints subcommands that manage endpoints through the admin API.
// The subcommand comes first ("hookd endpoints create -url …") so that each
// has flags of its own; plain "hookd endpoints" lists.
var endpointCommands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"create":        endpointCreate,
	"show":          endpointShow,
	"update":        endpointUpdate,
	"delete":        endpointDelete,
	"rotate-secret": endpointRotate,
	"secret":        endpointSecret,
}

const (
	createUsage = "usage: hookd endpoints create -url URL [-tenant T] [-events a,b] [-name N] [-scheme S] [-secret S] [-description D] [-set key=value]..."
	updateUsage = "usage: hookd endpoints update NAME [-url URL] [-events a,b] [-description D] [-disabled true|false] [-set key=value]... [-patch JSON]"
	rotateUsage = "usage: hookd endpoints rotate-secret NAME [-overlap 24h] [-secret S]"
)

// setFlags collects repeated -set key=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, " ") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

const setHelp = "set `key=value` (repeatable): a dotted key reaches into an object (signing.header=X, metadata.crm=acme); " +
	"the value is JSON when it parses as JSON (10, true, null, [\"1m\",\"5m\"]), else a string"

// applySets applies -set flags to a JSON object. A value that parses as
// JSON is taken as JSON, so numbers, booleans, lists and null (reset to
// the default, in a patch) need no other syntax; anything else is a string.
func applySets(doc map[string]any, sets []string) error {
	for _, kv := range sets {
		key, val, ok := strings.Cut(kv, "=")
		if !ok || key == "" {
			return fmt.Errorf("-set %q: want key=value", kv)
		}
		var v any = val
		dec := json.NewDecoder(strings.NewReader(val))
		dec.UseNumber() // 4 stays 4, not 4.0e0
		var parsed any
		if dec.Decode(&parsed) == nil && !dec.More() {
			v = parsed
		}
		path := strings.Split(key, ".")
		obj := doc
		for _, p := range path[:len(path)-1] {
			sub, ok := obj[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				obj[p] = sub
			}
			obj = sub
		}
		obj[path[len(path)-1]] = v
	}
	return nil
}

// setClash names a -set key that another -set or a named flag also sets
// (the last would silently win, as with a flag given twice), or "". A key
// clashes with itself, and with a key above or below it (signing and
// signing.secret). fieldOf maps a named flag to its JSON key.
func setClash(fs *flag.FlagSet, sets []string, fieldOf map[string]string) string {
	var keys []string
	fs.Visit(func(fl *flag.Flag) {
		if k, ok := fieldOf[fl.Name]; ok {
			keys = append(keys, k)
		}
	})
	named := len(keys)
	for _, kv := range sets {
		key, _, _ := strings.Cut(kv, "=")
		for i, k := range keys {
			if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(k, key+".") {
				if i < named {
					return fmt.Sprintf("-set %s: %s is set by its own flag", key, k)
				}
				return fmt.Sprintf("-set %s: given twice", key)
			}
		}
		keys = append(keys, key)
	}
	return ""
}

// splitList reads "a,b" as a list; "" is the empty list.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// endpointName parses a subcommand that takes exactly one NAME; false
// means a usage error, already reported.
func endpointName(f *adminFlags, args []string, cmd, usage string, stderr io.Writer) (string, bool) {
	pos, ok := f.parse(args)
	if !ok {
		return "", false
	}
	if len(pos) != 1 || pos[0] == "" {
		usageError(stderr, cmd, usage)
		return "", false
	}
	return pos[0], true
}

func endpointCreate(args []string, stdout, stderr io.Writer) int {
	const cmd = "endpoints create"
	f := newAdminFlags(cmd, stderr)
	req := client.EndpointRequest{}
	f.fs.StringVar(&req.URL, "url", "", "the receiver's URL (required)")
	f.fs.StringVar(&req.Tenant, "tenant", "", "the tenant (the platform's customer id) it belongs to; none: a platform endpoint")
	events := f.fs.String("events", "*", "comma-separated event types and patterns")
	f.fs.StringVar(&req.Name, "name", "", "its name (default: generated, ep_…)")
	scheme := f.fs.String("scheme", "", "signing scheme: standard (default), hmac-sha256 or none")
	secret := f.fs.String("secret", "", "signing secret (default: generated)")
	f.fs.StringVar(&req.Description, "description", "", "a description, up to 1 KiB")
	var sets setFlags
	f.fs.Var(&sets, "set", setHelp)
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 0 || req.URL == "" {
		return usageError(stderr, cmd, createUsage)
	}
	if clash := setClash(f.fs, sets, map[string]string{"url": "url", "tenant": "tenant", "events": "events", "name": "name",
		"scheme": "signing.scheme", "secret": "signing.secret", "description": "description"}); clash != "" {
		return usageError(stderr, cmd, clash)
	}
	req.Events = splitList(*events)
	if *scheme != "" || *secret != "" {
		req.Signing = &client.SigningRequest{Scheme: *scheme, Secret: *secret}
	}
	if len(sets) > 0 {
		// Through the request type, so a misspelt key is caught here.
		doc := map[string]any{}
		b, _ := json.Marshal(req)
		json.Unmarshal(b, &doc)
		if err := applySets(doc, sets); err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		b, _ = json.Marshal(doc)
		req = client.EndpointRequest{}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return usageError(stderr, cmd, "-set: "+jsonProblem(err, sets))
		}
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.CreateEndpoint(context.Background(), req)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) {
		printEndpoint(w, &res.Endpoint)
		fmt.Fprintf(w, "secret\t%s\n", dash(res.Secret))
	})
	return exitOK
}

// jsonProblem words a decode error of a -set value for the command line.
func jsonProblem(err error, sets []string) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	msg := fmt.Sprintf("%s: got a %s, want %s", te.Field, te.Value, jsonKind(te.Type))
	if te.Type.Kind() == reflect.String {
		// Point at the -set that did it: for a map value te.Field is the map.
		for _, kv := range slices.Backward(sets) {
			if k, v, _ := strings.Cut(kv, "="); k == te.Field || strings.HasPrefix(k, te.Field+".") {
				return msg + fmt.Sprintf(" (a value that parses as JSON is sent as JSON; quote it: -set '%s=\"%s\"')", k, v)
			}
		}
	}
	return msg
}

// jsonKind names the JSON value a Go type takes.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a number"
}

func endpointShow(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("endpoints show", stderr)
	name, ok := endpointName(f, args, "endpoints show", "usage: hookd endpoints show NAME", stderr)
	if !ok {
		return exitUsage
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	ep, err := a.Endpoint(context.Background(), name)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, ep, func(w io.Writer) { printEndpoint(w, ep) })
	return exitOK
}

// endpointUpdate sends a merge patch: only what the flags name changes.
// The named flags cover what operators change most; -set and -patch
// reach every other setting without a flag of its own each.
func endpointUpdate(args []string, stdout, stderr io.Writer) int {
	const cmd = "endpoints update"
	f := newAdminFlags(cmd, stderr)
	url := f.fs.String("url", "", "new URL")
	events := f.fs.String("events", "", "new comma-separated event types and patterns")
	description := f.fs.String("description", "", "new description")
	disabled := f.fs.String("disabled", "", "true parks its events as undeliverable, false delivers again (as disable/enable)")
	var sets setFlags
	f.fs.Var(&sets, "set", setHelp+"; null resets to the default")
	patchJSON := f.fs.String("patch", "", "a JSON merge patch for anything else, applied before the other flags")
	name, ok := endpointName(f, args, cmd, updateUsage, stderr)
	if !ok {
		return exitUsage
	}
	if clash := setClash(f.fs, sets, map[string]string{"url": "url", "events": "events", "description": "description", "disabled": "disabled"}); clash != "" {
		return usageError(stderr, cmd, clash)
	}
	patch := map[string]any{}
	if *patchJSON != "" {
		dec := json.NewDecoder(strings.NewReader(*patchJSON))
		dec.UseNumber()
		if err := dec.Decode(&patch); err != nil || patch == nil || dec.More() {
			return usageError(stderr, cmd, "-patch: want a JSON object, e.g. '{\"timeout\":\"10s\",\"headers\":null}'")
		}
	}
	var bad string
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "url":
			patch["url"] = *url
		case "events":
			patch["events"] = splitList(*events)
		case "description":
			patch["description"] = *description
		case "disabled":
			b, err := strconv.ParseBool(*disabled)
			if err != nil {
				bad = "-disabled: want true or false"
			}
			patch["disabled"] = b
		}
	})
	if bad != "" {
		return usageError(stderr, cmd, bad)
	}
	if err := applySets(patch, sets); err != nil {
		return usageError(stderr, cmd, err.Error())
	}
	if len(patch) == 0 {
		return usageError(stderr, cmd, "nothing to change; "+updateUsage)
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	ep, err := a.PatchEndpoint(context.Background(), name, patch)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, ep, func(w io.Writer) { printEndpoint(w, ep) })
	return exitOK
}

// endpointDelete prints nothing with -json: the API answers 204, no body.
func endpointDelete(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("endpoints delete", stderr)
	name, ok := endpointName(f, args, "endpoints delete", "usage: hookd endpoints delete NAME", stderr)
	if !ok {
		return exitUsage
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	if err := a.DeleteEndpoint(context.Background(), name); err != nil {
		return fail(stderr, err)
	}
	if !f.json {
		fmt.Fprintf(stdout, "deleted %s; its pending deliveries are undeliverable (reason: endpoint deleted)\n", name)
	}
	return exitOK
}

func endpointRotate(args []string, stdout, stderr io.Writer) int {
	const cmd = "endpoints rotate-secret"
	f := newAdminFlags(cmd, stderr)
	overlap := f.fs.String("overlap", "", "how long the old secrets keep signing alongside (standard scheme; default 24h, 0s: every old one stops at once)")
	secret := f.fs.String("secret", "", "the new secret (default: generated)")
	name, ok := endpointName(f, args, cmd, rotateUsage, stderr)
	if !ok {
		return exitUsage
	}
	if *overlap != "" {
		if d, err := time.ParseDuration(*overlap); err != nil || d < 0 {
			return usageError(stderr, cmd, "-overlap: want a duration such as 24h or 0s")
		}
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.RotateSecret(context.Background(), name, client.RotateRequest{Secret: *secret, Overlap: *overlap})
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) { fmt.Fprintf(w, "secret\t%s\n", dash(res.Secret)) })
	return exitOK
}

func endpointSecret(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("endpoints secret", stderr)
	name, ok := endpointName(f, args, "endpoints secret", "usage: hookd endpoints secret NAME", stderr)
	if !ok {
		return exitUsage
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.EndpointSecret(context.Background(), name)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "secret\t%s\n", dash(res.Secret))
		for _, p := range res.Previous {
			fmt.Fprintf(w, "previous\t%s\tsigns until %s\n", dash(p.Secret), stamp(p.ExpiresAt))
		}
	})
	return exitOK
}

func printEndpoint(w io.Writer, e *client.Endpoint) {
	state := dash(e.State)
	if e.DisabledReason != "" {
		state += " (" + e.DisabledReason + ")"
	}
	lastFailure := when(e.LastFailure)
	if e.LastFailureError != "" {
		lastFailure += "  " + e.LastFailureError
	}
	var meta []string
	for _, k := range slices.Sorted(maps.Keys(e.Metadata)) {
		meta = append(meta, k+"="+e.Metadata[k])
	}
	fmt.Fprintf(w, "name\t%s\nid\t%s\nsource\t%s\ntenant\t%s\ndescription\t%s\nurl\t%s\nevents\t%s\n",
		dash(e.Name), dash(e.ID), dash(e.Source), dash(e.Tenant), dash(e.Description), dash(e.URL), dash(strings.Join(e.Events, ", ")))
	fmt.Fprintf(w, "state\t%s\nsigning\t%s\npending\t%d\nin flight\t%d\nfailures\t%d\nlast success\t%s\nlast failure\t%s\nmetadata\t%s\n",
		state, dash(e.Scheme), e.Pending, e.InFlight, e.ConsecutiveFailures, when(e.LastSuccess), lastFailure, dash(strings.Join(meta, ", ")))
}
