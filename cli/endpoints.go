package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"hookd/client"
)

func endpoints(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && endpointCommands[args[0]] != nil {
		return endpointCommands[args[0]](args[1:], stdout, stderr)
	}
	f := newAdminFlags("endpoints", stderr)
	tenant := f.fs.String("tenant", "", "only this tenant's endpoints")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) > 0 {
		if endpointCommands[pos[0]] != nil {
			return usageError(stderr, "endpoints", "put the subcommand first: hookd endpoints "+pos[0]+" … [flags]")
		}
		return usageError(stderr, "endpoints", "usage: hookd endpoints [-tenant T] | create|show|update|delete|rotate-secret|secret …")
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	items, err := allPages(func(cursor string) ([]client.Endpoint, string, error) {
		page, err := a.Endpoints(context.Background(), client.EndpointQuery{Tenant: *tenant, Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return page.Items, page.NextCursor, nil
	})
	if err != nil {
		return fail(stderr, err)
	}
	list := &client.EndpointList{Items: items}
	f.print(stdout, list, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tSOURCE\tTENANT\tSTATE\tPENDING\tIN FLIGHT\tFAILURES\tLAST SUCCESS\tLAST FAILURE\tBLOCKED SINCE\tURL")
		for _, e := range list.Items {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", dash(e.Name), dash(e.Source), dash(e.Tenant), dash(e.State), e.Pending, e.InFlight,
				e.ConsecutiveFailures, when(e.LastSuccess), when(e.LastFailure), when(e.BlockedSince), dash(e.URL))
		}
	})
	return exitOK
}

// allPages reads every page of a list: an operator's table shows all of
// it. page returns one page's items and the next cursor ("" at the end).
func allPages[T any](page func(cursor string) ([]T, string, error)) ([]T, error) {
	all := []T{}
	for cursor := ""; ; {
		items, next, err := page(cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if cursor = next; cursor == "" {
			return all, nil
		}
	}
}

// test exits 1 when the receiver did not answer 2xx, so scripts can gate
// on it.
func test(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("test", stderr)
	typ := f.fs.String("type", "", "event type (default: the endpoint's test_event_type)")
	data := f.fs.String("data", "", "event data as JSON")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	if len(pos) != 1 {
		return usageError(stderr, "test", "usage: hookd test ENDPOINT [-type T] [-data JSON]")
	}
	req := client.TestRequest{Type: *typ}
	if *data != "" {
		if !json.Valid([]byte(*data)) {
			return usageError(stderr, "test", "-data is not valid JSON")
		}
		req.Data = json.RawMessage(*data)
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.Test(context.Background(), pos[0], req)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) {
		verdict := "FAILED"
		if res.OK {
			verdict = "OK"
		}
		fmt.Fprintf(w, "%s\t%s\nevent\t%s\nstatus\t%d\nlatency\t%vms\n", verdict, dash(res.Endpoint), dash(res.ID),
			res.Attempt.Status, res.Attempt.LatencyMS)
		if res.Attempt.Error != "" {
			fmt.Fprintf(w, "error\t%s\n", res.Attempt.Error)
		}
	})
	if !res.OK {
		return exitFailed
	}
	return exitOK
}
