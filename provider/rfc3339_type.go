package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// instantType is a string attribute type holding an RFC 3339 time, whose
// values are semantically equal when the appliance stores them the same
// way: as the same instant in UTC, to the second (see
// model.IdentityBindingSpec.Normalize). So "2030-01-01T01:00:00+01:00" in
// the configuration matches "2030-01-01T00:00:00Z" read back, and the plan
// after an apply stays empty.
//
// timetypes.RFC3339 is not enough here: it treats the same instant written
// with different offsets as different values.
type instantType struct {
	basetypes.StringType
}

var _ basetypes.StringTypable = instantType{}

// Equal reports whether o is an instantType.
func (t instantType) Equal(o attr.Type) bool {
	_, ok := o.(instantType)
	return ok
}

// String names the type in messages.
func (t instantType) String() string { return "provider.instantType" }

// ValueFromString wraps a string value.
func (t instantType) ValueFromString(_ context.Context, in basetypes.StringValue) (basetypes.StringValuable, diag.Diagnostics) {
	return instantValue{StringValue: in}, nil
}

// ValueFromTerraform converts a Terraform value.
func (t instantType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	v, err := t.StringType.ValueFromTerraform(ctx, in)
	if err != nil {
		return nil, err
	}
	s, ok := v.(basetypes.StringValue)
	if !ok {
		return nil, fmt.Errorf("unexpected value type %T", v)
	}
	return instantValue{StringValue: s}, nil
}

// ValueType returns the value type.
func (t instantType) ValueType(context.Context) attr.Value { return instantValue{} }

// instantValue is a value of instantType.
type instantValue struct {
	basetypes.StringValue
}

var _ basetypes.StringValuableWithSemanticEquals = instantValue{}

// instantNull returns a null instant.
func instantNull() instantValue { return instantValue{StringValue: basetypes.NewStringNull()} }

// instantOf returns an instant holding s.
func instantOf(s string) instantValue { return instantValue{StringValue: basetypes.NewStringValue(s)} }

// Type returns instantType.
func (v instantValue) Type(context.Context) attr.Type { return instantType{} }

// Equal reports exact equality (same spelling).
func (v instantValue) Equal(o attr.Value) bool {
	other, ok := o.(instantValue)
	return ok && v.StringValue.Equal(other.StringValue)
}

// StringSemanticEquals reports whether both values name the same instant as
// the appliance stores it: in UTC, to the second.
func (v instantValue) StringSemanticEquals(_ context.Context, newValuable basetypes.StringValuable) (bool, diag.Diagnostics) {
	n, ok := newValuable.(instantValue)
	if !ok {
		return false, nil
	}
	a, errA := normalizeInstant(v.ValueString())
	b, errB := normalizeInstant(n.ValueString())
	return errA == nil && errB == nil && a == b, nil
}

// normalizeInstant is the appliance's normalization of an expiry.
func normalizeInstant(s string) (string, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return "", err
	}
	return t.UTC().Format(time.RFC3339), nil
}
