package api_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"hookd/api"
	"hookd/daemon"
)

func load(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q: want 3.1", doc.OpenAPI)
	}
	return doc
}

// The file is a valid OpenAPI 3.1 document: every $ref resolves, every
// schema is a schema, and each example and default obeys its schema.
func TestOpenAPIIsValid(t *testing.T) {
	doc := load(t)
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		t.Fatal(err)
	}
}

var param = regexp.MustCompile(`\{[^}/]+\}`)

// Every route the daemon serves is in the file, under the tag of the
// listener that serves it and that listener's server, and the file
// describes no route the daemon does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := load(t)
	inCode := map[string]bool{}
	for _, r := range daemon.Routes() {
		inCode[r.Listener+" "+r.Method+" "+r.Path] = true
	}
	serverOf := map[string]string{}
	for _, s := range doc.Servers {
		switch s.Description {
		case "ingest listener ([ingest] listen)":
			serverOf["ingest"] = s.URL
		case "admin listener ([admin] listen)":
			serverOf["admin"] = s.URL
		case "portal listener ([portal] listen)":
			serverOf["portal"] = s.URL
		}
	}
	inFile := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if len(op.Tags) != 1 || serverOf[op.Tags[0]] == "" {
				t.Errorf("%s %s: tags %q, want one of ingest, admin or portal (the listener)", method, path, op.Tags)
				continue
			}
			listener := op.Tags[0]
			if len(item.Servers) != 1 || item.Servers[0].URL != serverOf[listener] {
				t.Errorf("%s %s: tagged %s, but its servers are not the %s listener's (%s)", method, path, listener, listener, serverOf[listener])
			}
			inFile[listener+" "+method+" "+param.ReplaceAllString(path, "{}")] = true
			if op.OperationID == "" {
				t.Errorf("%s %s: no operationId (generated clients name their methods after it)", method, path)
			}
		}
	}
	for r := range inCode {
		if !inFile[r] {
			t.Errorf("%s: served but not in api/openapi.yaml", r)
		}
	}
	for r := range inFile {
		if !inCode[r] {
			t.Errorf("%s: in api/openapi.yaml but not served", r)
		}
	}
	if len(inCode) == 0 || !slices.ContainsFunc(daemon.Routes(), func(r daemon.Route) bool { return r.Path == "/openapi.yaml" }) {
		t.Error("the daemon does not serve its own description")
	}
}
