package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// BucketAnchors holds the anchors of recorded sessions, keyed by session
// id (ids start with their creation time, so keys sort oldest first).
const BucketAnchors = "anchors"

// Anchor is what the store remembers of a finished recording, apart from
// the recording file: the numbers a verifier compares the file with. A
// file cut short, or cut and re-appended with a valid chain (even one
// re-signed with the appliance's key), no longer matches its anchor.
//
// The type lives here rather than in the recording package because the
// store must not import recording; recording aliases it.
type Anchor struct {
	// SessionID names the session ("ses_...").
	SessionID string `json:"session_id"`
	// File is the recording's path relative to the recordings directory
	// ("2026-01-02/ses_....rec").
	File string `json:"file"`
	// Records is how many records the file holds, its closing manifest
	// included.
	Records int64 `json:"records"`
	// Bytes is the file's length.
	Bytes int64 `json:"bytes"`
	// FinalHash is the hex SHA-256 of the file's last record (the
	// manifest), which chains every record before it.
	FinalHash string `json:"final_hash"`
	// KeyFingerprint names the recording key that signed the manifest.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// StartedAt and EndedAt bound the session.
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// ConnectionID is the connection the session went through.
	ConnectionID string `json:"connection_id,omitempty"`
}

// ErrAnchorExists is returned by PutAnchor when the session already has a
// different anchor: anchors are written once.
var ErrAnchorExists = errors.New("the session already has a different anchor")

// PutAnchor stores the anchor of a finished session. Anchors are
// write-once: writing the same anchor again is a no-op, a different one
// fails with ErrAnchorExists, so nothing that can reach this method can
// quietly re-anchor a rewritten recording.
func (s *Store) PutAnchor(ctx context.Context, sessionID string, a Anchor) error {
	if a.SessionID == "" {
		a.SessionID = sessionID
	}
	if sessionID == "" || a.SessionID != sessionID {
		return fmt.Errorf("putting an anchor for %q: the anchor names session %q", sessionID, a.SessionID)
	}
	return s.PutAnchors(ctx, []Anchor{a})
}

// PutAnchors stores several anchors in one transaction (one commit, one
// fsync: the recorder batches the sessions that end together). It is
// all or nothing; each anchor is write-once as in PutAnchor.
func (s *Store) PutAnchors(ctx context.Context, anchors []Anchor) error {
	data := make([][]byte, len(anchors))
	for i, a := range anchors {
		if a.SessionID == "" {
			return errors.New("putting an anchor: empty session id")
		}
		var err error
		if data[i], err = json.Marshal(a); err != nil {
			return fmt.Errorf("encoding the anchor of %s: %w", a.SessionID, err)
		}
	}
	written := 0
	// Anchors are not configuration: they do not advance the revision
	// (which would make the reconciler rebuild the data path).
	err := s.updateUnversioned(ctx, func(tx Tx) error {
		written = 0
		for i, a := range anchors {
			old, err := tx.Get(BucketAnchors, a.SessionID)
			switch {
			case err == nil:
				var prev Anchor
				if err := json.Unmarshal(old, &prev); err != nil {
					return fmt.Errorf("decoding the stored anchor of %s: %w", a.SessionID, err)
				}
				if !prev.equal(a) {
					return fmt.Errorf("anchor of %s: %w", a.SessionID, ErrAnchorExists)
				}
				continue
			case !errors.Is(err, ErrNotFound):
				return fmt.Errorf("reading the anchor of %s: %w", a.SessionID, err)
			}
			if err := tx.Put(BucketAnchors, a.SessionID, data[i]); err != nil {
				return err
			}
			written++
		}
		if written == 0 {
			return errUnchanged // nothing new: no revision
		}
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return err
	}
	return nil
}

func (a Anchor) equal(b Anchor) bool {
	return a.SessionID == b.SessionID && a.File == b.File && a.Records == b.Records && a.Bytes == b.Bytes &&
		a.FinalHash == b.FinalHash && a.KeyFingerprint == b.KeyFingerprint && a.StartedAt.Equal(b.StartedAt) &&
		a.EndedAt.Equal(b.EndedAt) && a.ConnectionID == b.ConnectionID
}

// GetAnchor returns the anchor of a session, or an error wrapping
// ErrNotFound.
func (s *Store) GetAnchor(ctx context.Context, sessionID string) (*Anchor, error) {
	var a *Anchor
	err := s.backend.View(ctx, func(tx Tx) error {
		data, err := tx.Get(BucketAnchors, sessionID)
		if err != nil {
			return fmt.Errorf("anchor of %s: %w", sessionID, err)
		}
		a = &Anchor{}
		if err := json.Unmarshal(data, a); err != nil {
			return fmt.Errorf("decoding the anchor of %s: %w", sessionID, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// ListAnchors returns anchors in session id order (oldest first), starting
// at the first id >= from; limit <= 0 returns all of them.
func (s *Store) ListAnchors(ctx context.Context, from string, limit int) ([]Anchor, error) {
	out := []Anchor{}
	err := s.backend.View(ctx, func(tx Tx) error {
		return tx.Scan(BucketAnchors, from, func(key string, data []byte) error {
			var a Anchor
			if err := json.Unmarshal(data, &a); err != nil {
				return fmt.Errorf("decoding the anchor of %s: %w", key, err)
			}
			out = append(out, a)
			if limit > 0 && len(out) >= limit {
				return ErrStop
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PruneAnchors deletes the anchors of pruned sessions and appends the
// audit entry that records the pruning, in one transaction: an anchor
// disappears exactly when the audit log says why. Missing anchors (a
// session that crashed before it was anchored) are not an error. e.Seq is
// assigned here; a zero e.Time is set to now.
func (s *Store) PruneAnchors(ctx context.Context, sessionIDs []string, e model.AuditEntry) error {
	if e.Action == "" {
		return errors.New("pruning anchors: the audit entry needs an action")
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	err := s.updateUnversioned(ctx, func(tx Tx) error {
		for _, id := range sessionIDs {
			if err := tx.Delete(BucketAnchors, id); err != nil {
				return fmt.Errorf("deleting the anchor of %s: %w", id, err)
			}
		}
		return appendAudit(tx, e)
	})
	return err
}
