package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"hookd/client"
)

const tenantsUsage = "usage: hookd tenants | hookd tenants delete TENANT | hookd tenants portal-link TENANT [-ttl 15m] [-caps view,resend,...]"

// tenants lists the tenants that have endpoints, or deletes one's managed
// endpoints.
func tenants(args []string, stdout, stderr io.Writer) int {
	f := newAdminFlags("tenants", stderr)
	ttl := f.fs.String("ttl", "", "portal-link: how long the link may be used (default 15m, at most 24h)")
	caps := f.fs.String("caps", "", "portal-link: comma-separated capabilities (default all: view,manage_endpoints,resend,test,view_secret,rotate_secret)")
	pos, ok := f.parse(args)
	if !ok {
		return exitUsage
	}
	switch {
	case len(pos) == 0:
	case len(pos) == 2 && pos[0] == "delete" && pos[1] != "":
		return tenantDelete(f, pos[1], stdout, stderr)
	case len(pos) == 2 && pos[0] == "portal-link" && pos[1] != "":
		r := client.PortalLinkRequest{TTL: *ttl}
		if *caps != "" {
			r.Capabilities = strings.Split(*caps, ",")
		}
		return portalLink(f, pos[1], r, stdout, stderr)
	default:
		return usageError(stderr, "tenants", tenantsUsage)
	}
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	items, err := allPages(func(cursor string) ([]client.Tenant, string, error) {
		page, err := a.Tenants(context.Background(), client.TenantQuery{Limit: 1000, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return page.Items, page.NextCursor, nil
	})
	if err != nil {
		return fail(stderr, err)
	}
	list := &client.TenantList{Items: items}
	f.print(stdout, list, func(w io.Writer) {
		fmt.Fprintln(w, "TENANT\tENDPOINTS\tPENDING\tUNDELIVERABLE\tFAILING ENDPOINTS")
		for _, t := range list.Items {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", dash(t.Tenant), t.Endpoints, t.Pending, t.Undeliverable, t.FailingEndpoints)
		}
	})
	return exitOK
}

func tenantDelete(f *adminFlags, tenant string, stdout, stderr io.Writer) int {
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.DeleteTenant(context.Background(), tenant)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "tenant\t%s\ndeleted\t%s\n", dash(res.Tenant), dash(strings.Join(res.Deleted, ", ")))
		if len(res.Kept) > 0 {
			fmt.Fprintf(w, "kept\t%s\t(config endpoints: remove them from the file)\n", strings.Join(res.Kept, ", "))
		}
	})
	return exitOK
}

// portalLink mints a magic link to a tenant's portal, for an operator to
// look at what a customer sees or to hand it over by hand.
func portalLink(f *adminFlags, tenant string, r client.PortalLinkRequest, stdout, stderr io.Writer) int {
	a := f.connect(stderr)
	if a == nil {
		return exitUsage
	}
	res, err := a.PortalLink(context.Background(), tenant, r)
	if err != nil {
		return fail(stderr, err)
	}
	f.print(stdout, res, func(w io.Writer) {
		fmt.Fprintf(w, "url\t%s\nexpires\t%s\ncapabilities\t%s\n", res.URL, res.ExpiresAt.Format(time.RFC3339), strings.Join(res.Capabilities, ", "))
	})
	return exitOK
}
