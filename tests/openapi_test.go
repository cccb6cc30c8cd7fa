package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"hookd/api"
)

// Every answer the end-to-end tests get through do (Daemon.Post,
// Daemon.Admin) is checked against api/openapi.yaml: its route must be
// described for the listener that answered, its status listed, its
// headers and body as described. So the file cannot drift from the code
// as long as the tests exercise it.

// spec is api/openapi.yaml made strict, with a router per listener.
var spec = sync.OnceValues(func() (*apiSpec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	closeResponseObjects(doc)
	s := &apiSpec{doc: doc, routers: map[string]routers.Router{}}
	for _, listener := range []string{"ingest", "admin", "portal"} {
		if s.routers[listener], err = gorillamux.NewRouter(only(doc, listener)); err != nil {
			return nil, err
		}
	}
	return s, nil
})

type apiSpec struct {
	doc     *openapi3.T
	routers map[string]routers.Router // by listener
}

// only is doc cut down to the operations tagged listener, with no
// servers: the tests' listeners are on ephemeral ports, and which
// listener answered is known from the address instead.
func only(doc *openapi3.T, listener string) *openapi3.T {
	out := *doc
	out.Servers = nil
	out.Paths = openapi3.NewPaths()
	for path, item := range doc.Paths.Map() {
		keep := *item
		keep.Servers = nil
		for method, op := range item.Operations() {
			if !slices.Contains(op.Tags, listener) {
				keep.SetOperation(method, nil)
			}
		}
		if len(keep.Operations()) > 0 {
			out.Paths.Set(path, &keep)
		}
	}
	return &out
}

// closeResponseObjects makes every object in an answer schema refuse
// properties it does not describe. The published file leaves them open
// (clients should ignore fields they do not know, so adding one is not a
// breaking change), but a field the code adds without describing it is
// drift, and fails here.
func closeResponseObjects(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var close func(*openapi3.SchemaRef)
	close = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		flattenAllOf(s)
		if len(s.Properties) > 0 && s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
			no := false
			s.AdditionalProperties.Has = &no
		}
		for _, p := range s.Properties {
			close(p)
		}
		close(s.Items)
		for _, xs := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range xs {
				close(x)
			}
		}
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				for _, mt := range resp.Value.Content {
					close(mt.Schema)
				}
			}
		}
	}
}

// exercised holds the operationId of every route an answer was checked for.
var exercised sync.Map

// flattenAllOf folds the object schemas of s.AllOf into s, so that one
// closed object describes the whole answer: closing each part alone would
// refuse the other parts' properties.
func flattenAllOf(s *openapi3.Schema) {
	for _, part := range s.AllOf {
		if part.Value == nil || len(part.Value.Properties) == 0 {
			return
		}
	}
	if len(s.AllOf) == 0 {
		return
	}
	props := openapi3.Schemas{}
	maps.Copy(props, s.Properties)
	for _, part := range s.AllOf {
		maps.Copy(props, part.Value.Properties)
		s.Required = append(s.Required, part.Value.Required...)
	}
	s.Properties, s.AllOf = props, nil
	if len(s.Type.Slice()) == 0 {
		s.Type = &openapi3.Types{openapi3.TypeObject}
	}
}

// listeners maps the address of each listener of a daemon under test to
// which listener it is.
var listeners sync.Map // "127.0.0.1:port" → *listenerName

type listenerName struct{ name string }

// registerListeners records the bound addresses of a daemon (or hookd
// process) under test until the test ends.
func registerListeners(tb testing.TB, ingest, admin string, portal ...string) {
	names := map[string]string{ingest: "ingest", admin: "admin"}
	for _, p := range portal {
		names[p] = "portal"
	}
	for addr, name := range names {
		v := &listenerName{name}
		listeners.Store(addr, v)
		// A later test may be given the same port: forget only our entry.
		tb.Cleanup(func() { listeners.CompareAndDelete(addr, v) })
	}
}

// checkAnswer fails the test unless api/openapi.yaml describes the
// answer resp (whose body is body) to req. An answer to a request the
// file describes (2xx) must also have had a request the file allows:
// hookd accepting a field the file does not list is drift too.
func checkAnswer(tb testing.TB, req *http.Request, reqBody string, resp *http.Response, body []byte) {
	tb.Helper()
	s, err := spec()
	if err != nil {
		tb.Fatalf("api/openapi.yaml: %v", err)
	}
	v, ok := listeners.Load(req.URL.Host)
	if !ok {
		tb.Errorf("%s %s: not a listener of a daemon under test, so its answer cannot be checked", req.Method, req.URL)
		return
	}
	listener := v.(*listenerName).name
	// The operators' /ui/api/ on the admin listener is the portal's /api/:
	// the file describes it once, on the portal listener.
	if rest, ok := strings.CutPrefix(req.URL.Path, "/ui/api/"); ok && listener == "admin" {
		req = req.Clone(context.Background())
		req.URL.Path, listener = "/api/"+rest, "portal"
	}
	route, params, err := s.routers[listener].FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		// The file says so once, in its description, rather than on every path.
		if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
			tb.Errorf("%s %s (%s listener): %d, want 405 with Allow for a method the path does not list", req.Method, req.URL.Path, listener, resp.StatusCode)
		}
		checkErrorBody(tb, s, req, resp, body)
		return
	case err != nil:
		tb.Errorf("%s %s answered %d on the %s listener, but api/openapi.yaml does not describe that route there: %v", req.Method, req.URL.Path, resp.StatusCode, listener, err)
		return
	}
	exercised.Store(route.Operation.OperationID, true)
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		tb.Errorf("%s %s (%s listener) answered %d %s, which api/openapi.yaml does not allow: %v", req.Method, req.URL.Path, listener, resp.StatusCode, clip(body), err)
	}
	// A batch answers 200 whatever its items, so its request may be invalid.
	if resp.StatusCode < 300 && route.Operation.OperationID != "sendEventBatch" {
		check := req.Clone(context.Background())
		check.Body = io.NopCloser(strings.NewReader(reqBody))
		in.Request = check
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			tb.Errorf("%s %s (%s listener) accepted a request api/openapi.yaml does not allow (%s): %v", req.Method, req.URL.Path, listener, clip([]byte(reqBody)), err)
		}
	}
}

// checkErrorBody fails the test unless body is the API's error shape.
func checkErrorBody(tb testing.TB, s *apiSpec, req *http.Request, resp *http.Response, body []byte) {
	tb.Helper()
	var v any
	err := errors.New("Content-Type " + resp.Header.Get("Content-Type"))
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err = json.Unmarshal(body, &v); err == nil {
			err = s.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
		}
	}
	if err != nil {
		tb.Errorf("%s %s answered %d %s, not the error shape: %v", req.Method, req.URL.Path, resp.StatusCode, clip(body), err)
	}
}

// doUnlisted is do for a request to a path api/openapi.yaml does not
// list, sent on purpose: the answer must be the error shape.
func doUnlisted(tb testing.TB, method, url, contentType, body string, headers ...string) (int, map[string]any, http.Header) {
	tb.Helper()
	return send(tb, method, url, contentType, body, headers, func(req *http.Request, resp *http.Response, b []byte) {
		s, err := spec()
		if err != nil {
			tb.Fatal(err)
		}
		checkErrorBody(tb, s, req, resp, b)
	})
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
