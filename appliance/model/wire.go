package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// The types below are the admin API's wire format beside the objects, shared
// by the appliance that serves them and the client that reads them.

// ObjectRef names an object for people and programs: for example a
// dependent that blocks a delete.
type ObjectRef struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (r ObjectRef) String() string { return fmt.Sprintf("%s %q (%s)", r.Kind.Title(), r.Name, r.ID) }

// AuditEntry records one admin write. It never holds a secret value: specs
// carry secrets only as set/version.
type AuditEntry struct {
	// Seq orders entries; it only grows.
	Seq uint64 `json:"seq"`
	// Time is when the write was committed.
	Time time.Time `json:"time"`
	// Actor identifies the credential used ("admin-token:3f2a9c1e").
	Actor string `json:"actor"`
	// RequestID is the X-Request-Id of the write.
	RequestID string `json:"request_id,omitempty"`
	// Action is "create", "replace" or "delete".
	Action string `json:"action"`
	// Kind, ObjectID and Name identify the object.
	Kind     Kind   `json:"kind"`
	ObjectID string `json:"object_id"`
	Name     string `json:"name"`
	// GenerationBefore and GenerationAfter are the object's generation
	// before and after the write (0 before a create, after a delete).
	GenerationBefore int64 `json:"generation_before"`
	GenerationAfter  int64 `json:"generation_after"`
	// Spec is the spec written (absent for a delete).
	Spec json.RawMessage `json:"spec,omitempty"`
}

// AuditQuery selects audit entries; zero fields do not filter.
type AuditQuery struct {
	// After returns entries with a sequence number greater than this.
	After uint64
	// Limit caps the entries returned (default and maximum 1000).
	Limit int
	// Kind and ObjectID keep entries about that kind or object.
	Kind     Kind
	ObjectID string
}

// ApplianceStatus is the body of GET /v1/status.
type ApplianceStatus struct {
	Version       string         `json:"version"`
	StartedAt     time.Time      `json:"started_at"`
	UptimeSeconds int64          `json:"uptime_seconds"`
	Store         StoreStatus    `json:"store"`
	Counts        map[string]int `json:"counts"`
	// Reconcile is the reconciler's state.
	Reconcile json.RawMessage `json:"reconcile,omitempty"`
}

// StoreStatus describes the desired-state store.
type StoreStatus struct {
	// Backend names the engine ("bolt", "postgres").
	Backend string `json:"backend"`
	// Revision counts committed writes.
	Revision uint64 `json:"revision"`
}
