package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Kind names one of the four kinds of object.
type Kind string

// The kinds, in the order their objects depend on each other.
const (
	KindTLSSettings     Kind = "tls_settings"
	KindGateway         Kind = "gateway"
	KindConnection      Kind = "connection"
	KindIdentityBinding Kind = "identity_binding"
)

// Kinds lists every kind, dependencies first.
var Kinds = []Kind{KindTLSSettings, KindGateway, KindConnection, KindIdentityBinding}

// NewSpec returns a pointer to a zero spec of the kind.
func (k Kind) NewSpec() (Spec, error) {
	switch k {
	case KindTLSSettings:
		return &TLSSettingsSpec{}, nil
	case KindGateway:
		return &GatewaySpec{}, nil
	case KindConnection:
		return &ConnectionSpec{}, nil
	case KindIdentityBinding:
		return &IdentityBindingSpec{}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", string(k))
}

// Collection is the kind's path segment in the admin API ("/v1/<collection>").
func (k Kind) Collection() string {
	switch k {
	case KindTLSSettings:
		return "tls-settings"
	case KindGateway:
		return "gateways"
	case KindConnection:
		return "connections"
	case KindIdentityBinding:
		return "identity-bindings"
	}
	return ""
}

// ParentField is the spec field holding the id of the object that scopes
// this kind's names, and the query parameter a list is filtered by ("" when
// names are global).
func (k Kind) ParentField() string {
	switch k {
	case KindConnection:
		return "gateway_id"
	case KindIdentityBinding:
		return "connection_id"
	}
	return ""
}

// Title is the kind's name for people ("TLS settings", "gateway", ...).
func (k Kind) Title() string {
	switch k {
	case KindTLSSettings:
		return "TLS settings"
	case KindIdentityBinding:
		return "identity binding"
	}
	return string(k)
}

// IDPrefix starts every id of the kind, so an id says what it names.
func (k Kind) IDPrefix() string {
	switch k {
	case KindTLSSettings:
		return "tls_"
	case KindGateway:
		return "gw_"
	case KindConnection:
		return "conn_"
	case KindIdentityBinding:
		return "bind_"
	}
	return ""
}

// DecodeJSON decodes exactly one JSON value into v; with strict set,
// unknown object fields are an error.
func DecodeJSON(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}
