// Package model defines Sallyport's declarative resource model: the four
// kinds an operator declares (TLS settings, gateways, connections, identity
// bindings), the envelope every object shares, and the validation rules that
// the admin API enforces and the Terraform provider reuses at plan time.
package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Object is the envelope shared by every kind: server-assigned metadata, the
// desired state (Spec) and the state the reconciler observed (Status).
type Object[S any] struct {
	// ID is assigned by the appliance on create and never changes.
	ID string `json:"id"`
	// Name is chosen by the operator; it is unique within the object's scope
	// (see Kind.Scope).
	Name string `json:"name"`
	// Generation is bumped on every change of Name or Spec.
	Generation int64 `json:"generation"`
	// CreatedAt and UpdatedAt are set by the appliance.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Spec is the desired state.
	Spec S `json:"spec"`
	// Status is written by the reconciler, never by a client.
	Status Status `json:"status"`
}

// Typed objects, as the admin API serves them and the Go client returns them.
type (
	// TLSSettings is a TLS identity and trust policy.
	TLSSettings = Object[TLSSettingsSpec]
	// Gateway is a listener.
	Gateway = Object[GatewaySpec]
	// Connection is one executor behind one gateway.
	Connection = Object[ConnectionSpec]
	// IdentityBinding says who may use a connection.
	IdentityBinding = Object[IdentityBindingSpec]
)

// Resource is an object of any kind, as the store and the admin API handle
// it. Its Spec is one of *TLSSettingsSpec, *GatewaySpec, *ConnectionSpec or
// *IdentityBindingSpec.
type Resource = Object[Spec]

// Status is the reconciler's report on an object.
type Status struct {
	// Ready is true when the data path runs ObservedGeneration of the object.
	Ready bool `json:"ready"`
	// ObservedGeneration is the generation the reconciler last acted on.
	ObservedGeneration int64 `json:"observed_generation"`
	// Message explains a failure or what is pending; empty when ready.
	Message string `json:"message,omitempty"`
	// Certificate is the certificate a gateway currently serves.
	Certificate *CertificateStatus `json:"certificate,omitempty"`
}

// CertificateStatus describes a served certificate without revealing its key.
type CertificateStatus struct {
	Subject           string    `json:"subject"`
	Issuer            string    `json:"issuer"`
	NotAfter          time.Time `json:"not_after"`
	SHA256Fingerprint string    `json:"sha256_fingerprint"`
}

// Secret is a value the appliance accepts on write and never returns.
//
// On write, Value carries a new value. A Secret with an empty Value keeps the
// value already stored (so an object read back can be written again
// unchanged); a nil *Secret removes it. On read, Value is always empty, Set
// says whether a value is stored and Version is a keyed fingerprint of it
// (HMAC-SHA-256 under an appliance key) that changes whenever the value does
// without revealing it.
type Secret struct {
	Value   string `json:"value,omitempty"`
	Set     bool   `json:"set,omitempty"`
	Version string `json:"version,omitempty"`
}

// NewSecret returns a Secret that sets value on write.
func NewSecret(value string) *Secret { return &Secret{Value: value} }

// String never reveals the value, so a Secret is safe to print or log.
func (s *Secret) String() string {
	if s == nil {
		return "<nil>"
	}
	if s.Value != "" {
		return "<secret: new value>"
	}
	return fmt.Sprintf("<secret set=%t version=%s>", s.Set, s.Version)
}

// GoString keeps %#v from printing the value.
func (s *Secret) GoString() string { return s.String() }

// SecretField names one secret inside a spec: its field path (for example
// "spec.certificate.static.key_pem") and the Secret itself.
type SecretField struct {
	Path   string
	Secret *Secret
}

// Reference is a spec field that points at another object.
type Reference struct {
	Field string // field path, e.g. "spec.gateway_id"
	Kind  Kind
	ID    string
}

// Spec is implemented by the four spec types.
type Spec interface {
	// Kind names the kind this spec belongs to.
	Kind() Kind
	// Normalize fills defaults and canonicalizes values (sorting sets,
	// lower-casing hostnames) so that equal intent compares equal.
	Normalize()
	// Validate checks every field. secret returns the effective value of the
	// secret at a field path (a new value or the one already stored) and
	// whether one is available, so that checks such as "the key matches the
	// certificate" can run on a write that keeps a stored key.
	Validate(secret SecretLookup) Problems
	// References lists the objects this spec points at.
	References() []Reference
	// Secrets lists the secrets this spec holds, present or not.
	Secrets() []SecretField
	// Parent is the id of the object whose scope this object's name lives in
	// ("" for kinds whose names are global).
	Parent() string
}

// SecretLookup returns the effective value of the secret at a field path.
type SecretLookup func(path string) (value string, ok bool)

// NewSecretsLookup returns a SecretLookup that answers from the values in
// the given secret fields only (what a client sent).
func NewSecretsLookup(fields []SecretField) SecretLookup {
	return func(path string) (string, bool) {
		for _, f := range fields {
			if f.Path == path && f.Secret != nil && f.Secret.Value != "" {
				return f.Secret.Value, true
			}
		}
		return "", false
	}
}

// DecodeSpec decodes the JSON spec of an object of the given kind. With
// strict set, unknown fields are an error (what the admin API wants of
// client input); the store decodes its own records leniently so that a
// downgrade can read what a newer version wrote.
func DecodeSpec(kind Kind, data []byte, strict bool) (Spec, error) {
	spec, err := kind.NewSpec()
	if err != nil {
		return nil, err
	}
	if err := DecodeJSON(data, spec, strict); err != nil {
		return nil, err
	}
	return spec, nil
}

// TypedResource converts a typed object to the kind-agnostic Resource.
func TypedResource[S any, PS interface {
	*S
	Spec
}](o *Object[S]) *Resource {
	spec := PS(&o.Spec)
	return &Resource{
		ID: o.ID, Name: o.Name, Generation: o.Generation,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		Spec: spec, Status: o.Status,
	}
}

// UnmarshalResource decodes a Resource of a known kind from its JSON form.
func UnmarshalResource(kind Kind, data []byte, strict bool) (*Resource, error) {
	var env struct {
		Object[json.RawMessage]
	}
	if err := DecodeJSON(data, &env, strict); err != nil {
		return nil, err
	}
	spec, err := DecodeSpec(kind, env.Spec, strict)
	if err != nil {
		return nil, err
	}
	o := env.Object
	return &Resource{
		ID: o.ID, Name: o.Name, Generation: o.Generation,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
		Spec: spec, Status: o.Status,
	}, nil
}
