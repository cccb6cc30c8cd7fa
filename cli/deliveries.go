package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"hookd/client"
)

// deliveries prints a page of the deliveries log, newest first.
func deliveries(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("deliveries", stderr)
	var q client.DeliveryQuery
	f.fs.StringVar(&q.Tenant, "tenant", "", "only this tenant's events")
	f.fs.StringVar(&q.Endpoint, "endpoint", "", "only this endpoint's deliveries")
	f.fs.StringVar(&q.Status, "status", "", "pending, delivered or undeliverable")
	f.fs.StringVar(&q.Type, "type", "", "only events of this type")
	f.fs.StringVar(&q.Since, "since", "", "ingested at or after: RFC 3339, or a duration ago such as 1h")
	f.fs.StringVar(&q.Until, "until", "", "ingested at or before: RFC 3339, or a duration ago")
	f.fs.IntVar(&q.Limit, "limit", 100, "page size")
	f.fs.StringVar(&q.Cursor, "cursor", "", "page cursor from the previous page")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 0 {
		return usageError(stderr, "deliveries", "usage: hookd deliveries [-tenant T] [-endpoint NAME] [-status S] [-type T] [-since T] [-until T]")
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	page, err := a.Deliveries(context.Background(), q)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, page, func(w io.Writer) {
		fmt.Fprintln(w, "CREATED\tEVENT\tTYPE\tTENANT\tENDPOINT\tSTATUS\tATTEMPTS\tLAST STATUS\tLAST ERROR")
		for _, d := range page.Items {
			last, lastErr := "-", "-"
			if d.LastAttempt != nil {
				last, lastErr = strconv.Itoa(d.LastAttempt.Status), dash(d.LastAttempt.Error)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", when(&d.CreatedAt), dash(d.EventID), dash(d.Type), dash(d.Tenant),
				dash(d.Endpoint), d.Status, d.Attempts, last, lastErr)
		}
		if page.NextCursor != "" {
			fmt.Fprintf(w, "\nmore: -cursor %s\n", page.NextCursor)
		}
	})
	return exitOK
}
