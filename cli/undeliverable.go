package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"hookd/client"
	"hookd/config"
)

func undeliverable(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("undeliverable", stderr)
	endpoint := f.fs.String("endpoint", "", "only this endpoint")
	since := f.fs.String("since", "", "redeliver: parked at or after (RFC 3339, or a duration ago such as 1h)")
	until := f.fs.String("until", "", "redeliver: parked at or before (RFC 3339, or a duration ago such as 1h)")
	limit := f.fs.Int("limit", 100, "list: page size")
	cursor := f.fs.String("cursor", "", "list: page cursor from the previous page")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 1 || (pos[0] != "list" && pos[0] != "redeliver") {
		return usageError(stderr, "undeliverable", "usage: hookd undeliverable list|redeliver [-endpoint NAME] [-since T] [-until T]")
	}
	if pos[0] == "list" {
		a := f.connect(stderr)
		if a == nil {
			return exitUsage
		}
		page, err := a.Undeliverable(context.Background(), client.UndeliverableQuery{Endpoint: *endpoint, Limit: *limit, Cursor: *cursor})
		if err != nil {
			return fail(stderr, err)
		}
		f.print(stdout, page, func(w io.Writer) { printParked(w, page) })
		return exitOK
	}

	req := client.RedeliverUndeliverableRequest{Endpoint: *endpoint}
	var err error
	if req.Since, err = parseTime(*since); err != nil {
		return usageError(stderr, "undeliverable", "-since: "+err.Error())
	}
	if req.Until, err = parseTime(*until); err != nil {
		return usageError(stderr, "undeliverable", "-until: "+err.Error())
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.RedeliverUndeliverable(context.Background(), req)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) { fmt.Fprintf(w, "requeued %d deliveries\n", res.Redelivered) })
	return exitOK
}

func printParked(w io.Writer, page *client.UndeliverablePage) {
	fmt.Fprintln(w, "PARKED AT\tEVENT\tTYPE\tENDPOINT\tATTEMPTS\tLAST STATUS\tREASON")
	for _, p := range page.Items {
		last := "-"
		if p.LastAttempt != nil {
			last = strconv.Itoa(p.LastAttempt.Status)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", when(p.ParkedAt), dash(p.EventID), dash(p.EventType),
			dash(p.Endpoint), p.Attempts, last, dash(p.Reason))
	}
	if page.NextCursor != "" {
		fmt.Fprintf(w, "\nmore: -cursor %s\n", page.NextCursor)
	}
}

// parseTime reads an RFC 3339 time, or a duration ago such as 1h or 2d
// (as hookd deliveries -since takes); "" is the zero time, no bound.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := config.TimeOrAgo(s, time.Now())
	return t.UTC(), err
}
