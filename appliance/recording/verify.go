package recording

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Verification outcomes (VerifyResult.Status).
const (
	// StatusVerified: framing, chain and signature hold and the file
	// matches its anchor.
	StatusVerified = "verified"
	// StatusSigned: framing, chain and signature hold; no anchor was
	// given to compare with, so a rewrite by someone holding the key is
	// not excluded.
	StatusSigned = "signed"
	// StatusIncomplete: the chain holds but the session has no manifest
	// (still recording, or the appliance stopped before it ended) and no
	// anchor says otherwise.
	StatusIncomplete = "incomplete"
	// StatusTampered: something does not hold; FirstBad says what.
	StatusTampered = "tampered"
)

// BadRecord names the first record that fails verification.
type BadRecord struct {
	// Index is the record's position (-1 for the file header).
	Index int64 `json:"index"`
	// Offset is where its frame starts in the file.
	Offset int64 `json:"offset"`
	// Reason says what is wrong.
	Reason string `json:"reason"`
}

func (b *BadRecord) String() string {
	if b.Index < 0 {
		return fmt.Sprintf("header: %s", b.Reason)
	}
	return fmt.Sprintf("record %d (offset %d): %s", b.Index, b.Offset, b.Reason)
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Path      string `json:"path"`
	SessionID string `json:"session_id,omitempty"`
	// Status is StatusVerified, StatusSigned, StatusIncomplete or
	// StatusTampered; OK is true for the first two.
	Status string `json:"status"`
	OK     bool   `json:"ok"`
	// Records, Bytes and FinalHash describe the readable chain.
	Records   int64  `json:"records"`
	Bytes     int64  `json:"bytes"`
	FinalHash string `json:"final_hash,omitempty"`
	// Complete: the file ends with a manifest.
	Complete bool `json:"complete"`
	// SignatureValid: the manifest's signature verifies with the given key.
	SignatureValid bool `json:"signature_valid"`
	// Anchored: an anchor was given and the file matches it.
	Anchored bool `json:"anchored"`
	// FirstBad is the first record that fails (nil when none does).
	FirstBad *BadRecord `json:"first_bad,omitempty"`
	// Note explains an incomplete or unanchored result.
	Note string `json:"note,omitempty"`
	// Manifest is the session's manifest, when it has one.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// Summary is a one-line account of the result.
func (v *VerifyResult) Summary() string {
	switch {
	case v.FirstBad != nil:
		return fmt.Sprintf("TAMPERED: %s", v.FirstBad)
	case v.Status == StatusIncomplete:
		return "INCOMPLETE: " + v.Note
	case v.Status == StatusSigned:
		return fmt.Sprintf("ok: %d records, chain and signature valid (%s)", v.Records, v.Note)
	}
	return fmt.Sprintf("ok: %d records, chain, signature and anchor valid", v.Records)
}

// Verify checks a recording file: framing, the hash chain from the header
// to the last record, the manifest's numbers and its Ed25519 signature
// against pub, and, when anchor is not nil, that the file is exactly the
// one anchored (record count, final hash, length). Every finding is in
// the result; the error is for a file that cannot be read at all.
//
// It detects an edited byte (a record's content no longer matches the
// hash the next record links to, or the record no longer parses), records
// reordered or deleted (sequence numbers and links), the tail cut (the
// manifest is gone, and the anchor's count is not reached), cut and
// re-appended with a valid chain and even a valid signature (the anchor's
// final hash), and a manifest signed by another key.
func Verify(path string, pub ed25519.PublicKey, anchor *Anchor) (*VerifyResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the recording: %w", err)
	}
	defer f.Close()
	res := &VerifyResult{Path: path}
	verify(res, &frameReader{br: bufio.NewReaderSize(f, 64<<10)}, pub, anchor)
	switch {
	case res.FirstBad != nil:
		res.Status = StatusTampered
	case !res.Complete:
		res.Status = StatusIncomplete
	case anchor == nil:
		res.Status, res.OK = StatusSigned, true
		res.Note = "not compared with an anchor"
	default:
		res.Status, res.OK, res.Anchored = StatusVerified, true, true
	}
	return res, nil
}

func verify(res *VerifyResult, fr *frameReader, pub ed25519.PublicKey, anchor *Anchor) {
	bad := func(i, off int64, format string, args ...any) {
		if res.FirstBad == nil {
			res.FirstBad = &BadRecord{Index: i, Offset: off, Reason: fmt.Sprintf(format, args...)}
		}
	}
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(fr.br, magic); err != nil || magicVersion(magic) == 0 {
		bad(-1, 0, "not a Sallyport recording (bad magic)")
		return
	}
	fr.off = int64(len(Magic))
	frame, body, err := fr.next()
	if err != nil {
		bad(-1, int64(len(Magic)), "unreadable header: %v", err)
		return
	}
	var hdr Header
	if err := json.Unmarshal(body, &hdr); err != nil || hdr.Format != FormatName {
		bad(-1, int64(len(Magic)), "the header does not parse as a recording header")
		return
	}
	if hdr.Version != magicVersion(magic) {
		bad(-1, int64(len(Magic)), "format version %d is not supported here (this build reads 1 and %d, and the magic says %d)", hdr.Version, FormatVersion, magicVersion(magic))
		return
	}
	res.SessionID = hdr.SessionID
	headerHash := sha256.Sum256(append(magic, frame...))
	prev := headerHash
	res.Bytes = fr.off

	var (
		i         int64
		manifest  *Manifest
		prevOff   int64 // offset of record i-1
		anchorOff int64 // offset of record anchor.Records, if the file has it
	)
	for ; ; i++ {
		off := fr.off
		if anchor != nil && i == anchor.Records {
			anchorOff = off
		}
		frame, body, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if manifest != nil {
			bad(i, off, "data follows the manifest (appended after the session ended)")
			break
		}
		if errors.Is(err, errTruncated) {
			// A crash mid-write leaves this too: it is tampering only
			// when an anchor says the session ended.
			if anchor != nil {
				bad(i, off, "the file ends inside this record: the tail was cut")
			} else {
				res.Note = fmt.Sprintf("the file ends inside record %d (a crash mid-write, or the tail was cut)", i)
			}
			break
		}
		if err != nil {
			bad(i, off, "unreadable frame: %v", err)
			break
		}
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil {
			bad(i, off, "the record does not parse (edited): %v", err)
			break
		}
		if env.Seq != i {
			bad(i, off, "sequence number %d where %d belongs: records were deleted, inserted or reordered", env.Seq, i)
			break
		}
		if env.Prev != hexHash(prev) {
			if i == 0 {
				bad(-1, int64(len(Magic)), "record 0 does not link to the header: the header (or record 0's link) was edited")
			} else {
				bad(i-1, prevOff, "its content does not match the hash record %d links to: the record was edited (or the link in record %d was)", i, i)
			}
			break
		}
		if env.RequestID != "" && hdr.Version < 2 {
			bad(i, off, "a request id in a version %d record", hdr.Version)
			break
		}
		if !knownTypes[env.Type] {
			bad(i, off, "unknown record type %q", env.Type)
			break
		}
		if (i == 0) != (env.Type == TypeSessionStart) {
			bad(i, off, "a session_start record must open the session, and only it")
			break
		}
		if env.Type == TypeSessionEnd {
			m, reason := checkManifest(env, hdr, hexHash(headerHash), i, hexHash(prev), off, pub)
			res.Manifest = m
			if reason != "" {
				bad(i, off, "%s", reason)
				break
			}
			res.SignatureValid = true
			manifest = m
		}
		prev = hashFrame(frame)
		res.Bytes = fr.off
		prevOff = off
	}
	res.Records = i
	res.FinalHash = hexHash(prev)
	res.Complete = manifest != nil
	if res.FirstBad != nil {
		return
	}
	if !res.Complete && res.Note == "" {
		res.Note = "the session has no manifest (still recording, or the appliance stopped before it ended)"
	}
	if anchor == nil {
		return
	}
	last, lastOff := res.Records-1, prevOff
	switch {
	case anchor.SessionID != hdr.SessionID:
		bad(-1, int64(len(Magic)), "the file is session %s, the anchor is for %s", hdr.SessionID, anchor.SessionID)
	case res.Records < anchor.Records:
		bad(res.Records, res.Bytes, "missing: the anchor says the session has %d records, the file has %d (the tail was cut)", anchor.Records, res.Records)
	case res.Records > anchor.Records:
		bad(anchor.Records, anchorOff, "beyond the anchor: it says the session has %d records, the file has %d (records appended)", anchor.Records, res.Records)
	case res.FinalHash != anchor.FinalHash:
		bad(last, lastOff, "the session's final hash %s is not the anchored %s: the recording was rewritten (cut and re-appended)", short(res.FinalHash), short(anchor.FinalHash))
	case res.Bytes != anchor.Bytes:
		bad(last, lastOff, "the file is %d bytes, the anchor says %d", res.Bytes, anchor.Bytes)
	}
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// checkManifest checks a session_end record: its signature over the
// manifest exactly as written, then that the manifest describes the chain
// before it. It returns the manifest (when it parses) and what is wrong.
func checkManifest(env envelope, hdr Header, headerHash string, index int64, finalHash string, offset int64, pub ed25519.PublicKey) (*Manifest, string) {
	var end SessionEnd
	if err := json.Unmarshal(env.Payload, &end); err != nil {
		return nil, "the manifest does not parse"
	}
	var m Manifest
	if err := json.Unmarshal(end.Manifest, &m); err != nil {
		return nil, "the manifest does not parse"
	}
	if !ed25519.Verify(pub, signingMessage(end.Manifest), end.Signature) {
		if m.KeyFingerprint != Fingerprint(pub) {
			return &m, fmt.Sprintf("the manifest's signature does not verify with the given public key %s (the manifest names key %s: re-signed with a foreign key?)", Fingerprint(pub), m.KeyFingerprint)
		}
		return &m, "the manifest's signature does not verify with the given public key (the manifest was edited)"
	}
	switch {
	case m.SessionID != hdr.SessionID:
		return &m, fmt.Sprintf("the manifest is for session %s, the header for %s", m.SessionID, hdr.SessionID)
	case m.HeaderHash != headerHash:
		return &m, "the manifest's header hash does not match the header"
	case m.Records != index:
		return &m, fmt.Sprintf("the manifest counts %d records before it, the file has %d", m.Records, index)
	case m.FinalHash != finalHash:
		return &m, "the manifest's final hash does not match the chain"
	case m.Bytes != offset:
		return &m, fmt.Sprintf("the manifest says the records before it take %d bytes, they take %d", m.Bytes, offset)
	case !m.EndedAt.Equal(env.Time):
		return &m, "the manifest record's time differs from the signed end time"
	}
	return &m, ""
}

// Reader reads a recording's records in order, without verifying them
// (see Verify).
type Reader struct {
	f      *os.File
	fr     *frameReader
	header Header
	index  int64
}

// OpenReader opens a recording and reads its header.
func OpenReader(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the recording: %w", err)
	}
	r := &Reader{f: f, fr: &frameReader{br: bufio.NewReaderSize(f, 64<<10)}}
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(r.fr.br, magic); err != nil || magicVersion(magic) == 0 {
		f.Close()
		return nil, fmt.Errorf("%s is not a Sallyport recording", path)
	}
	r.fr.off = int64(len(Magic))
	_, body, err := r.fr.next()
	if err == nil {
		err = json.Unmarshal(body, &r.header)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading the header of %s: %w", path, err)
	}
	return r, nil
}

// Header is the file's header.
func (r *Reader) Header() Header { return r.header }

// Next returns the next record, or io.EOF after the last one.
func (r *Reader) Next() (*Record, error) {
	off := r.fr.off
	frame, body, err := r.fr.next()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("record %d: %w", r.index, err)
	}
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("record %d: %w", r.index, err)
	}
	rec := &Record{Index: r.index, Offset: off, Seq: env.Seq, Time: env.Time, Type: env.Type, RequestID: env.RequestID, Prev: env.Prev, Hash: hexHash(hashFrame(frame)), Payload: env.Payload}
	r.index++
	return rec, nil
}

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }
