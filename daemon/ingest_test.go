package daemon

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"hookd/client"
	"hookd/store"
)

// The single-event answer is written by hand (the hot path); it must say
// exactly what client.Ack reads.
func TestAckIsClientAck(t *testing.T) {
	for _, r := range []store.IngestResult{{ID: "evt_1", Deliveries: 2}, {ID: "e:2", Duplicate: true}, {ID: "e.3"}} {
		var ctx fasthttp.RequestCtx
		writeAck(&ctx, 202, r)
		dec := json.NewDecoder(bytes.NewReader(ctx.Response.Body()))
		dec.DisallowUnknownFields()
		var got client.Ack
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%s: %v", ctx.Response.Body(), err)
		}
		if want := (client.Ack{ID: r.ID, Duplicate: r.Duplicate, Deliveries: r.Deliveries}); got != want {
			t.Errorf("%s: read as %+v, want %+v", ctx.Response.Body(), got, want)
		}
	}
}

// The hand-written event parser knows the fields client.NewEvent sends,
// and no others.
func TestEventFieldsAreClientNewEvent(t *testing.T) {
	var fields []string
	for f := range reflect.TypeFor[client.NewEvent]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	slices.Sort(fields)
	known := slices.Sorted(slices.Values(eventFields))
	if !slices.Equal(fields, known) {
		t.Errorf("client.NewEvent has %q, the parser knows %q", fields, known)
	}
}

// An endpoint no longer in the table keeps its own metrics label when it
// was a config endpoint; a deleted managed one shares the managed label.
func TestMetricLabelOfRemovedEndpoints(t *testing.T) {
	for id, want := range map[string]string{"m:01jd4n7w3kq7zc6t5d0m2r8y4x": managedLabel, "cfg@A": "cfg@A", "crm": "crm"} {
		if got := metricLabel(nil, id); got != want {
			t.Errorf("%s: %q, want %q", id, got, want)
		}
	}
}
