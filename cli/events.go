package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"hookd/client"
)

func events(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("events", stderr)
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 2 || pos[0] != "show" {
		return usageError(stderr, "events", "usage: hookd events show ID")
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	ev, err := a.Event(context.Background(), pos[1])
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, ev, func(w io.Writer) { printEvent(w, ev) })
	return exitOK
}

func printEvent(w io.Writer, ev *client.Event) {
	fmt.Fprintf(w, "event\t%s\ntype\t%s\ncreated\t%s\n", dash(ev.ID), dash(ev.Type), stamp(ev.CreatedAt))
	if ev.Tenant != "" {
		fmt.Fprintf(w, "tenant\t%s\n", ev.Tenant)
	}
	if len(ev.Data) > 0 {
		fmt.Fprintf(w, "data\t%s\n", shortJSON(ev.Data))
	}
	if len(ev.Payload) > 0 {
		fmt.Fprintf(w, "payload\t%s\n", shortJSON(ev.Payload))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ENDPOINT\tSTATE\tATTEMPT\tAT\tSTATUS\tLATENCY\tERROR / REASON")
	for _, d := range ev.Deliveries {
		at := cmp.Or(d.NextAttempt, d.DeliveredAt, d.ParkedAt) // the one its state sets
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t\t\t%s\n", dash(d.Endpoint), dash(d.State), d.Attempts, when(at), dash(d.Reason))
		for _, a := range d.History {
			fmt.Fprintf(w, "\t\t#%d\t%s\t%d\t%vms\t%s\n", a.N, stamp(a.At), a.Status, a.LatencyMS, dash(a.Error))
		}
	}
}

// shortJSON is a value on one line for the table, cut to its first
// shownJSON bytes: the whole of it is for -json.
func shortJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	if b.Len() <= shownJSON {
		return b.String()
	}
	return fmt.Sprintf("%s… (%d bytes; -json shows all)", strings.ToValidUTF8(string(b.Bytes()[:shownJSON]), ""), b.Len())
}

const shownJSON = 200

func redeliver(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("redeliver", stderr)
	endpoint := f.fs.String("endpoint", "", "only this endpoint")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 1 {
		return usageError(stderr, "redeliver", "usage: hookd redeliver ID [-endpoint NAME]")
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.Redeliver(context.Background(), pos[0], client.RedeliverRequest{Endpoint: *endpoint})
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "requeued %s for %s\n", res.ID, strings.Join(res.Endpoints, ", "))
	})
	return exitOK
}
