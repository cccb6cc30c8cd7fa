package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"hookd/client"
)

func endpoints(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("endpoints", stderr)
	if _, ok := f.parse(args); !ok {
		return exitUsage
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	list, err := a.Endpoints(context.Background())
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, list, func(w io.Writer) {
		fmt.Fprintln(w, "NAME\tSTATE\tPENDING\tIN FLIGHT\tFAILURES\tLAST SUCCESS\tLAST FAILURE\tBLOCKED SINCE\tURL")
		for _, e := range list.Endpoints {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", dash(e.Name), dash(e.State), e.Pending, e.InFlight,
				e.ConsecutiveFailures, when(e.LastSuccess), when(e.LastFailure), when(e.BlockedSince), dash(e.URL))
		}
	})
	return exitOK
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
