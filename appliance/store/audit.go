package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// AuditKey is the key of an audit entry: its sequence, zero-padded so that
// keys sort in sequence order.
func AuditKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

func (s *Store) auditEntry(w Writer, action string, r *model.Resource, before int64) model.AuditEntry {
	spec, _ := json.Marshal(r.Spec) // marshalling a spec cannot fail: it was just stored
	return model.AuditEntry{
		Time: s.now(), Actor: w.Actor, RequestID: w.RequestID, Action: action,
		Kind: r.Spec.Kind(), ObjectID: r.ID, Name: r.Name,
		GenerationBefore: before, GenerationAfter: r.Generation, Spec: spec,
	}
}

// appendAudit writes e in the caller's transaction, so an audit entry
// exists exactly when its write does.
func appendAudit(tx Tx, e model.AuditEntry) error {
	seq, err := tx.NextSequence(BucketAudit)
	if err != nil {
		return fmt.Errorf("numbering the audit entry: %w", err)
	}
	e.Seq = seq
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding the audit entry: %w", err)
	}
	return tx.Put(BucketAudit, AuditKey(seq), data)
}

// Audit returns audit entries in sequence order.
func (s *Store) Audit(ctx context.Context, q model.AuditQuery) ([]model.AuditEntry, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	out := []model.AuditEntry{}
	if q.After == math.MaxUint64 {
		return out, nil
	}
	err := s.backend.View(ctx, func(tx Tx) error {
		return tx.Scan(BucketAudit, AuditKey(q.After+1), func(_ string, data []byte) error {
			var e model.AuditEntry
			if err := json.Unmarshal(data, &e); err != nil {
				return fmt.Errorf("decoding an audit entry: %w", err)
			}
			if (q.Kind == "" || e.Kind == q.Kind) && (q.ObjectID == "" || e.ObjectID == q.ObjectID) {
				out = append(out, e)
			}
			if len(out) >= q.Limit {
				return ErrStop
			}
			return nil
		})
	})
	return out, err
}
