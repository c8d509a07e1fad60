package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Status returns the appliance's status.
func (c *Client) Status(ctx context.Context) (*model.ApplianceStatus, error) {
	var s model.ApplianceStatus
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/status"}, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Audit returns audit entries matching q, oldest first.
func (c *Client) Audit(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error) {
	v := url.Values{}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Kind != "" {
		v.Set("kind", string(q.Kind))
	}
	if q.ObjectID != "" {
		v.Set("object_id", q.ObjectID)
	}
	var out struct {
		Items []model.AuditEntry `json:"items"`
	}
	if _, err := c.do(ctx, request{method: http.MethodGet, path: "/v1/audit", query: v}, &out); err != nil {
		return nil, err
	}
	return out.Items, nil
}
