package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sallyport/terraform-provider-sallyport/appliance/daemon"
	"github.com/sallyport/terraform-provider-sallyport/appliance/recording"
	"github.com/sallyport/terraform-provider-sallyport/appliance/store"
	"github.com/sallyport/terraform-provider-sallyport/appliance/version"
)

const recordingsUsage = `Usage:
  sallyportd recordings <command> [flags]

Commands:
  list     list recorded sessions with their verification status
  show     replay one session as a readable transcript
  verify   check chain, signature and anchor of sessions (exit 1 naming the first bad record)
  export   write one HTTP session as HAR 1.2

They read a data dir, or a copy of one, and need no running appliance.
Run "sallyportd recordings <command> --help" for its flags.
`

// storeLockTimeout is how long the CLI waits for the store's file lock.
const storeLockTimeout = time.Second

func recordingsCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, recordingsUsage)
		return errUsage
	}
	switch args[0] {
	case "list":
		return recordingsList(args[1:], stdout, stderr)
	case "show":
		return recordingsShow(args[1:], stdout, stderr)
	case "verify":
		return recordingsVerify(args[1:], stdout, stderr)
	case "export":
		return recordingsExport(args[1:], stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, recordingsUsage)
		return nil
	}
	fmt.Fprintf(stderr, "sallyportd recordings: unknown command %q\n\n%s", args[0], recordingsUsage)
	return errUsage
}

// recFlags are the flags the recordings commands share.
type recFlags struct {
	dataDir    string
	publicKey  string
	anchorFile string
	noAnchors  bool
}

func (f *recFlags) register(fs *flag.FlagSet, verifying bool) {
	fs.StringVar(&f.dataDir, "data-dir", envOr("SALLYPORT_DATA_DIR", ""), "the appliance's data dir, or a copy of it (env SALLYPORT_DATA_DIR)")
	if !verifying {
		return
	}
	fs.StringVar(&f.publicKey, "public-key", "", "PEM public key of the recording key (default DATA/"+recording.PublicKeyFile+"; for evidence, use a copy you trust, e.g. from GET /v1/recording-public-key)")
	fs.StringVar(&f.anchorFile, "anchor-file", "", "JSON anchors (an anchor, a list of them, or the body of GET /v1/sessions or /v1/sessions/{id}) instead of DATA/"+daemon.StoreFile)
	fs.BoolVar(&f.noAnchors, "no-anchors", false, "verify without anchors (a cut and re-signed recording then goes unnoticed)")
}

// parseArgs parses flags wherever they appear among the positional
// arguments ("verify ID --public-key K" and "verify --public-key K ID").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (f *recFlags) archive() (*recording.Archive, error) {
	if f.dataDir == "" {
		return nil, errors.New("--data-dir is required (the dev appliance's is .sallyport-dev)")
	}
	if _, err := os.Stat(filepath.Join(f.dataDir, recording.Dir)); err != nil {
		return nil, fmt.Errorf("no recordings in %s: %w", f.dataDir, err)
	}
	return recording.OpenArchive(f.dataDir), nil
}

// key loads the public key that verifies manifests.
func (f *recFlags) key(stderr io.Writer) (ed25519.PublicKey, error) {
	path := f.publicKey
	if path == "" {
		path = filepath.Join(f.dataDir, recording.PublicKeyFile)
		fmt.Fprintf(stderr, "note: using the public key in the data dir (%s); whoever can rewrite the recordings can replace it: pass --public-key with a copy you trust\n", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the public key: %w", err)
	}
	pub, err := recording.ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}

// anchors loads the anchors by session id: nil means "not compared".
func (f *recFlags) anchors() (map[string]*recording.Anchor, error) {
	switch {
	case f.noAnchors && f.anchorFile != "":
		return nil, errors.New("give --anchor-file or --no-anchors, not both")
	case f.noAnchors:
		return nil, nil
	case f.anchorFile != "":
		return loadAnchorFile(f.anchorFile)
	}
	return loadStoreAnchors(filepath.Join(f.dataDir, daemon.StoreFile))
}

// loadAnchorFile reads exported anchors in any of the shapes the admin
// API or an operator produces.
func loadAnchorFile(path string) (map[string]*recording.Anchor, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the anchor file: %w", err)
	}
	var shapes struct {
		Anchor  *recording.Anchor   `json:"anchor"`
		Anchors []*recording.Anchor `json:"anchors"`
		Items   []struct {
			Anchor *recording.Anchor `json:"anchor"`
		} `json:"items"`
	}
	var single recording.Anchor
	var list []*recording.Anchor
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(data, &list)
	} else if err = json.Unmarshal(data, &shapes); err == nil {
		list = append(list, shapes.Anchors...)
		for _, it := range shapes.Items {
			list = append(list, it.Anchor)
		}
		list = append(list, shapes.Anchor)
		if json.Unmarshal(data, &single) == nil && single.FinalHash != "" {
			list = append(list, &single)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("anchor file %s: %w", path, err)
	}
	out := map[string]*recording.Anchor{}
	for _, a := range list {
		if a != nil && a.SessionID != "" {
			out[a.SessionID] = a
		}
	}
	return out, nil
}

// loadStoreAnchors reads every anchor from a store file, read-only.
func loadStoreAnchors(path string) (map[string]*recording.Anchor, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no store to read anchors from (%w): pass --anchor-file, or --no-anchors to verify without them", err)
	}
	// A read-only bolt open takes a shared lock; the daemon holds an
	// exclusive one, so this fails quickly rather than wait for it.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: storeLockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("the store %s is locked by a running sallyportd (bbolt lets no reader in while the daemon holds it): "+
			"verify a copy of the data dir, pass --anchor-file with the anchors from GET /v1/sessions, or stop the appliance", path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the store read-only: %w", err)
	}
	defer db.Close()
	list, err := store.New(&readOnlyBolt{db: db}, nil).ListAnchors(context.Background(), "", 0)
	if err != nil {
		return nil, fmt.Errorf("reading anchors: %w", err)
	}
	out := make(map[string]*recording.Anchor, len(list))
	for i := range list {
		out[list[i].SessionID] = &list[i]
	}
	return out, nil
}

// verdict is one session's verification for the CLI.
type verdict struct {
	id     string
	status string // a recording.Status*, "unanchored", "missing"
	ok     bool
	detail string
	res    *recording.VerifyResult
}

// check verifies one session; anchors nil means "not compared".
func check(arch *recording.Archive, pub ed25519.PublicKey, anchors map[string]*recording.Anchor, id string) verdict {
	path, err := arch.Path(id)
	if err != nil {
		if a := anchors[id]; a != nil {
			return verdict{id: id, status: "missing", detail: "the session is anchored but its file " + a.File + " is gone (deleted outside retention)"}
		}
		return verdict{id: id, status: "missing", detail: err.Error()}
	}
	var anchor *recording.Anchor
	if anchors != nil {
		anchor = anchors[id]
	}
	res, err := recording.Verify(path, pub, anchor)
	if err != nil {
		return verdict{id: id, status: "unreadable", detail: err.Error()}
	}
	v := verdict{id: id, status: res.Status, ok: res.OK, detail: res.Summary(), res: res}
	if anchors != nil && anchor == nil && res.Status == recording.StatusSigned {
		// Complete and signed, yet the store never anchored it: planted,
		// or its anchor was removed.
		v.status, v.ok = "unanchored", false
		v.detail = "signed, but the store holds no anchor for it (a planted file, or its anchor was deleted)"
	}
	return v
}

func recordingsList(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("recordings list", "recordings list --data-dir DIR [--connection ID] [--since TIME] [--limit N]", `
List recorded sessions, newest first, each verified (chain, signature and,
from the data dir's store or --anchor-file, its anchor).`, stderr)
	var f recFlags
	f.register(fs, true)
	conn := fs.String("connection", "", "only sessions of this connection id")
	since := fs.String("since", "", "only sessions started at or after this RFC 3339 time")
	limit := fs.Int("limit", 0, "at most this many sessions")
	if err := parse(fs, args); err != nil {
		return err
	}
	opts := recording.ListOptions{ConnectionID: *conn, Limit: *limit}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return fmt.Errorf("--since %q: use an RFC 3339 time such as 2026-01-02T15:04:05Z", *since)
		}
		opts.Since = t
	}
	arch, err := f.archive()
	if err != nil {
		return err
	}
	pub, err := f.key(stderr)
	if err != nil {
		return err
	}
	anchors, err := f.anchors()
	if err != nil {
		return err
	}
	list, err := arch.List(opts)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tPROTOCOL\tCONNECTION\tIDENTITY\tRECORDS\tSTATUS")
	for _, s := range list {
		v := check(arch, pub, anchors, s.ID)
		records := "-"
		if v.res != nil {
			records = fmt.Sprint(v.res.Records)
		}
		conn := s.ConnectionID
		if s.ConnectionName != "" {
			conn = s.ConnectionName + " (" + s.ConnectionID + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.StartedAt.Format(time.RFC3339), orDash(s.Protocol), orDash(conn), s.Identity, records, v.status)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func recordingsShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("recordings show", "recordings show --data-dir DIR ID", `
Replay a session as a readable transcript, then say whether it verifies.`, stderr)
	var f recFlags
	f.register(fs, true)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		fs.Usage()
		return errUsage
	}
	arch, err := f.archive()
	if err != nil {
		return err
	}
	path, err := arch.Path(ids[0])
	if err != nil {
		return err
	}
	if err := recording.WriteTranscript(stdout, path); err != nil {
		return err
	}
	pub, err := f.key(stderr)
	if err != nil {
		fmt.Fprintf(stdout, "\nverification: not done: %v\n", err)
		return nil
	}
	anchors, err := f.anchors()
	if err != nil {
		fmt.Fprintf(stderr, "note: verifying without anchors: %v\n", err)
		anchors = nil
	}
	v := check(arch, pub, anchors, ids[0])
	fmt.Fprintf(stdout, "\nverification: %s: %s\n", v.status, v.detail)
	return nil
}

func recordingsVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("recordings verify", "recordings verify --data-dir DIR [--public-key FILE] [--anchor-file FILE] (ID... | --all)", `
Verify sessions: framing, the hash chain, the manifest's Ed25519 signature
and the anchor the store keeps (record count, final hash, length). Works
offline on a copy of the data dir. Exits 1 if any session fails, naming
its first bad record. With --all, anchored sessions whose file is gone
fail too.`, stderr)
	var f recFlags
	f.register(fs, true)
	all := fs.Bool("all", false, "verify every session in the data dir")
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		fmt.Fprintln(stderr, "give session ids or --all")
		fs.Usage()
		return errUsage
	}
	arch, err := f.archive()
	if err != nil {
		return err
	}
	pub, err := f.key(stderr)
	if err != nil {
		return err
	}
	anchors, err := f.anchors()
	if err != nil {
		return err
	}
	if anchors == nil {
		fmt.Fprintln(stderr, "warning: verifying without anchors: a recording cut and re-signed with the appliance's key would pass")
	}
	if *all {
		list, err := arch.List(recording.ListOptions{})
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, s := range list {
			ids = append(ids, s.ID)
			seen[s.ID] = true
		}
		for id := range anchors {
			if !seen[id] {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
	}
	var failed []verdict
	for _, id := range ids {
		v := check(arch, pub, anchors, id)
		fmt.Fprintf(stdout, "%s  %s  %s\n", id, v.status, v.detail)
		if !v.ok {
			failed = append(failed, v)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	first := failed[0]
	return fmt.Errorf("%d of %d sessions failed verification; first: %s: %s", len(failed), len(ids), first.id, first.detail)
}

func recordingsExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("recordings export", "recordings export --data-dir DIR --format har [--output FILE] ID", `
Export an HTTP (or gRPC) session as HAR 1.2, with what was recorded: no
redacted header, bodies capped and masked. Writes to stdout unless
--output is given.`, stderr)
	var f recFlags
	f.register(fs, false)
	format := fs.String("format", "har", "output format: har")
	output := fs.String("output", "", "write to this file (mode 0600) instead of stdout")
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		fs.Usage()
		return errUsage
	}
	if *format != "har" {
		return fmt.Errorf("--format %q: only har is supported", *format)
	}
	arch, err := f.archive()
	if err != nil {
		return err
	}
	path, err := arch.Path(ids[0])
	if err != nil {
		return err
	}
	har, err := recording.ExportHAR(path, version.Version)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(har, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the HAR: %w", err)
	}
	data = append(data, '\n')
	if *output == "" {
		_, err = stdout.Write(data)
		return err
	}
	if err := os.WriteFile(*output, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", *output, err)
	}
	return nil
}

// readOnlyBolt is a store.Backend over a bolt file opened read-only, so
// the store's own code reads the anchors.
type readOnlyBolt struct{ db *bolt.DB }

var errReadOnlyStore = errors.New("the store is open read-only")

func (b *readOnlyBolt) Name() string { return "bolt (read-only)" }

func (b *readOnlyBolt) View(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *bolt.Tx) error { return fn(readOnlyTx{tx}) })
}

func (b *readOnlyBolt) Update(context.Context, func(store.Tx) error) (uint64, error) {
	return 0, errReadOnlyStore
}

func (b *readOnlyBolt) Revision(context.Context) (uint64, error) { return 0, nil }

func (b *readOnlyBolt) Subscribe() (<-chan uint64, func()) {
	ch := make(chan uint64)
	close(ch)
	return ch, func() {}
}

func (b *readOnlyBolt) Close() error { return b.db.Close() }

type readOnlyTx struct{ tx *bolt.Tx }

func (t readOnlyTx) Get(bucket, key string) ([]byte, error) {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil, store.ErrNotFound
	}
	v := bk.Get([]byte(key))
	if v == nil {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t readOnlyTx) Put(string, string, []byte) error    { return errReadOnlyStore }
func (t readOnlyTx) Delete(string, string) error         { return errReadOnlyStore }
func (t readOnlyTx) NextSequence(string) (uint64, error) { return 0, errReadOnlyStore }

func (t readOnlyTx) Scan(bucket, from string, fn func(key string, value []byte) error) error {
	bk := t.tx.Bucket([]byte(bucket))
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	for k, v := c.Seek([]byte(from)); k != nil; k, v = c.Next() {
		if v == nil {
			continue
		}
		if err := fn(string(k), v); err != nil {
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

var (
	_ store.Backend = (*readOnlyBolt)(nil)
	_ store.Tx      = readOnlyTx{}
)
