package recording

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// Dir is the recordings directory inside the data dir.
const Dir = "recordings"

// Defaults of Options.
const (
	DefaultMinFreeBytes  = 64 << 20
	DefaultPruneInterval = 10 * time.Minute
	// DefaultFlushDelay bounds how long an ended exchange's records stay
	// in the process before they reach the kernel: a write(2) costs
	// about as much as recording a small exchange, so the exchanges of
	// a busy connection share them.
	DefaultFlushDelay = 20 * time.Millisecond
	// anchorTimeout bounds the store write that ends a session.
	anchorTimeout = 30 * time.Second
)

// Errors.
var (
	// ErrDiskFull is wrapped by StartSession's error (and a session
	// method's) when the recording disk is full and the connection's
	// policy refuses unrecorded sessions: the gateway answers 503.
	ErrDiskFull = errors.New("the recording disk is full")
	// ErrRecordingFailed is wrapped when recording fails for another
	// reason under the refuse policy: the gateway answers 503 too.
	ErrRecordingFailed = errors.New("the session cannot be recorded")
	// ErrClosed is returned once the recorder (or the session) is closed.
	ErrClosed = errors.New("the recorder is closed")
	// ErrSessionNotFound says no recording has that session id.
	ErrSessionNotFound = errors.New("no recorded session with that id")
)

// AnchorStore keeps the anchors of finished sessions and the audit log of
// pruning. *store.Store implements it.
type AnchorStore interface {
	// PutAnchor stores a session's anchor (write-once).
	PutAnchor(ctx context.Context, sessionID string, a Anchor) error
	// PutAnchors stores several anchors in one transaction (all or
	// nothing), so that sessions ending together share a commit.
	PutAnchors(ctx context.Context, anchors []Anchor) error
	// GetAnchor returns a session's anchor, or an error wrapping
	// store.ErrNotFound.
	GetAnchor(ctx context.Context, sessionID string) (*Anchor, error)
	// PruneAnchors deletes the anchors of pruned sessions and appends the
	// audit entry, in one transaction.
	PruneAnchors(ctx context.Context, sessionIDs []string, e model.AuditEntry) error
}

// Options configure a Recorder.
type Options struct {
	// Dir is the appliance's data dir: recordings go to Dir/recordings,
	// the key is Dir/recording-key.pem.
	Dir string
	// Key signs manifests; when nil it is loaded from (or created in) Dir.
	Key ed25519.PrivateKey
	// Anchors is where finished sessions are anchored (required).
	Anchors AnchorStore
	// Logger receives alerts (ERROR when a session goes unrecorded);
	// slog.Default() when nil.
	Logger *slog.Logger
	// Registry receives the recorder's metrics; none are registered when
	// nil.
	Registry prometheus.Registerer
	// Clock is the time source (time.Now when nil).
	Clock func() time.Time
	// MaxAge and MaxBytes are the retention: sessions older than MaxAge,
	// then the oldest sessions while all recordings take more than
	// MaxBytes, are pruned. Zero keeps everything.
	MaxAge   time.Duration
	MaxBytes int64
	// PruneInterval is how often retention runs in the background
	// (DefaultPruneInterval when 0); it also runs when a finished session
	// takes the total over MaxBytes.
	PruneInterval time.Duration
	// MinFreeBytes is the free space below which the disk counts as full
	// when a session starts (DefaultMinFreeBytes when 0; < 0 turns the
	// check off, leaving real write errors).
	MinFreeBytes int64
	// FreeSpace returns the bytes available in a directory (statfs when
	// nil).
	FreeSpace func(dir string) (uint64, error)
	// FlushDelay is how long the records of an ended exchange may wait in
	// their session's buffer for those of the session's next exchanges,
	// to share one write(2) (DefaultFlushDelay when 0; < 0 writes at the
	// end of every exchange).
	FlushDelay time.Duration

	// afterPrune, set by tests, observes each background pruning run.
	afterPrune func(*PruneResult, error)
}

// Recorder writes session recordings. It is safe for concurrent use.
type Recorder struct {
	opts    Options
	root    string
	key     ed25519.PrivateKey
	pub     ed25519.PublicKey
	fp      string
	log     *slog.Logger
	metrics *metrics
	archive *Archive
	anchors *anchorBatcher
	commits *committer

	// written counts the bytes written to recordings, for the free-space
	// estimate between two statfs calls.
	written atomic.Int64
	freeMu  sync.Mutex
	freeAt  time.Time // when free was measured (zero: measure again)
	free    uint64
	freeW   int64 // written when free was measured

	dayMu sync.Mutex
	day   string // the day directory known to exist

	mu     sync.Mutex
	active map[string]*Session
	closed bool

	total     atomic.Int64 // bytes of all recordings, as of the last prune plus sessions since
	pruneMu   sync.Mutex   // one prune at a time
	kick      chan struct{}
	stop      chan struct{}
	loopDone  chan struct{}
	closeOnce sync.Once
}

// New returns a Recorder writing under opts.Dir. When a retention limit
// is set it prunes in the background until Close.
func New(opts Options) (*Recorder, error) {
	if opts.Dir == "" {
		return nil, errors.New("recording: a data dir is required")
	}
	if opts.Anchors == nil {
		return nil, errors.New("recording: an anchor store is required (anchors are what catch a truncated recording)")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.FreeSpace == nil {
		opts.FreeSpace = statfsFree
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	if opts.FlushDelay == 0 {
		opts.FlushDelay = DefaultFlushDelay
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = DefaultPruneInterval
	}
	if opts.MaxAge < 0 || opts.MaxBytes < 0 {
		return nil, errors.New("recording: MaxAge and MaxBytes must not be negative")
	}
	if opts.Key == nil {
		k, err := LoadOrCreateKey(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("recording: %w", err)
		}
		opts.Key = k
	}
	root := filepath.Join(opts.Dir, Dir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("recording: creating %s: %w", root, err)
	}
	pub := opts.Key.Public().(ed25519.PublicKey)
	r := &Recorder{
		opts: opts, root: root, key: opts.Key, pub: pub, fp: Fingerprint(pub),
		log: opts.Logger.With("component", "recording"), metrics: newMetrics(opts.Registry),
		archive: OpenArchive(opts.Dir), anchors: &anchorBatcher{store: opts.Anchors}, active: map[string]*Session{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), loopDone: make(chan struct{}),
	}
	r.commits = newCommitter(r)
	if opts.MaxAge > 0 || opts.MaxBytes > 0 {
		go r.pruneLoop()
	} else {
		close(r.loopDone)
	}
	return r, nil
}

// PublicKey is the key that verifies this recorder's manifests.
func (r *Recorder) PublicKey() ed25519.PublicKey { return r.pub }

// PublicKeyPEM is PublicKey as a PEM "PUBLIC KEY" block.
func (r *Recorder) PublicKeyPEM() []byte { return PublicKeyPEM(r.pub) }

// Archive reads the recordings this recorder writes.
func (r *Recorder) Archive() *Archive { return r.archive }

// Close stops background pruning, ends the sessions still open (their
// manifests say "recorder_closed") and commits every closed session.
// Sessions started afterwards fail with ErrClosed.
func (r *Recorder) Close() error {
	var errs []error
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		open := make([]*Session, 0, len(r.active))
		for _, s := range r.active {
			open = append(open, s)
		}
		r.mu.Unlock()
		for _, s := range open {
			if err := s.CloseWithReason("recorder_closed"); err != nil {
				errs = append(errs, err)
			}
		}
		r.commits.close()
		close(r.stop)
		<-r.loopDone
	})
	return errors.Join(errs...)
}

func (r *Recorder) now() time.Time { return r.opts.Clock().UTC() }

// SessionInfo describes a session when it starts.
type SessionInfo struct {
	// Protocol is "http", "grpc" or "tcp".
	Protocol       string
	Identity       Identity
	ConnectionID   string
	ConnectionName string
	GatewayID      string
	GatewayName    string
	RemoteAddr     string
	// RequestID is the gateway's X-Request-Id of the exchange that opened
	// the session, for correlation with logs.
	RequestID string
	// RedactHeaders names headers removed from every recorded request and
	// response, beyond FixedRedactHeaders: the connection's injected
	// headers.
	RedactHeaders []string
	// Secrets are values never recorded in any encoding (plain, base64,
	// hex, URL-encoded, JSON-escaped): the planner's bearer token and the
	// connection's injected credential values. Values shorter than 4
	// bytes are ignored.
	Secrets []string
}

// StartSession opens the recording of one session (a client connection's
// exchanges for one route and credential, a tcp connection, a WebSocket
// session) under the connection's policy.
//
// It returns (nil, nil) when policy.Enabled is false, when r is nil, and
// when the session cannot be recorded but policy.OnDiskFull is
// "continue" (the session then runs unrecorded: an ERROR is logged and
// sallyport_recording_unrecorded_sessions_total counts it). Every
// *Session method accepts a nil session and does nothing.
//
// Under "refuse" (the default), a session that cannot be recorded is an
// error wrapping ErrDiskFull (disk full, or free space below
// MinFreeBytes) or ErrRecordingFailed: the gateway answers 503.
func (r *Recorder) StartSession(ctx context.Context, info SessionInfo, policy model.RecordingSpec) (*Session, error) {
	if r == nil || !policy.Enabled {
		return nil, nil
	}
	refuse := policy.OnDiskFull != model.OnDiskFullContinue
	maxBody := policy.MaxBodyBytes
	switch {
	case maxBody == 0:
		maxBody = DefaultMaxBodyBytes
	case maxBody < 0:
		maxBody = -1
	case maxBody > maxBodyCap:
		maxBody = maxBodyCap
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if err := r.checkFree(); err != nil {
		return r.unrecorded(info, refuse, err)
	}
	if err := r.commits.admit(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return r.unrecorded(info, refuse, err)
	}
	now := r.now()
	id, err := newSessionID(now)
	if err != nil {
		return r.unrecorded(info, refuse, err)
	}
	start := SessionStart{
		SessionID: id, Protocol: info.Protocol, Identity: info.Identity,
		ConnectionID: info.ConnectionID, ConnectionName: info.ConnectionName,
		GatewayID: info.GatewayID, GatewayName: info.GatewayName,
		RemoteAddr: info.RemoteAddr, RequestID: info.RequestID,
		MaxBodyBytes: maxBody, OnDiskFull: map[bool]string{true: model.OnDiskFullRefuse, false: model.OnDiskFullContinue}[refuse],
	}
	s := &Session{
		r: r, id: id, started: now, info: start, refuse: refuse, maxBody: maxBody,
		scrub: newScrubber(info.Secrets), redact: redactSet(info.RedactHeaders),
	}
	s.rel = filepath.ToSlash(filepath.Join(now.Format(time.DateOnly), id+".rec"))
	s.path = filepath.Join(r.root, filepath.FromSlash(s.rel))
	start.Identity = s.scrubIdentity(start.Identity)
	start.RemoteAddr = s.scrub.str(start.RemoteAddr)
	s.info = start
	if err := s.open(now); err != nil {
		return r.unrecorded(info, refuse, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		s.abandon()
		return nil, ErrClosed
	}
	r.active[id] = s
	r.mu.Unlock()
	r.metrics.active.Inc()
	return s, nil
}

// freeCacheTTL is how long a free-space measurement is trusted, less the
// bytes recorded since: a disk filling up is noticed within that time or
// as soon as the estimate drops below MinFreeBytes, whichever comes
// first (and a write that fails with ENOSPC fails its session anyway).
const freeCacheTTL = time.Second

// checkFree returns an error wrapping ErrDiskFull when the recording disk
// has less than MinFreeBytes free. It calls statfs at most about once per
// freeCacheTTL while there is room.
func (r *Recorder) checkFree() error {
	if r.opts.MinFreeBytes <= 0 {
		return nil
	}
	r.freeMu.Lock()
	defer r.freeMu.Unlock()
	now := time.Now()
	if !r.freeAt.IsZero() && now.Sub(r.freeAt) < freeCacheTTL {
		if est := int64(r.free) - (r.written.Load() - r.freeW); est >= r.opts.MinFreeBytes { //nolint:gosec // free space fits in an int64
			return nil
		}
	}
	r.freeAt = time.Time{}
	w := r.written.Load()
	free, err := r.opts.FreeSpace(r.root)
	if err != nil {
		// A failed check is not a full disk: real writes will tell.
		r.log.Warn("could not check the recording disk's free space", "error", err)
		return nil
	}
	if free < uint64(r.opts.MinFreeBytes) {
		return fmt.Errorf("%w: %d bytes free, below the %d required to start a session", ErrDiskFull, free, r.opts.MinFreeBytes)
	}
	r.freeAt, r.free, r.freeW = now, free, w
	return nil
}

// forgetFree makes the next session measure the free space again.
func (r *Recorder) forgetFree() {
	r.freeMu.Lock()
	r.freeAt = time.Time{}
	r.freeMu.Unlock()
}

// dayDir makes sure the directory of a day's recordings exists, creating
// it only when the day changes (or fresh is set: it went missing).
func (r *Recorder) dayDir(day string, fresh bool) error {
	r.dayMu.Lock()
	defer r.dayMu.Unlock()
	if r.day == day && !fresh {
		return nil
	}
	dir := filepath.Join(r.root, day)
	if _, err := os.Stat(dir); err != nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
		r.commits.dirCreated(dir)
	}
	r.day = day
	return nil
}

// unrecorded applies the disk-full policy to a session that cannot be
// recorded.
func (r *Recorder) unrecorded(info SessionInfo, refuse bool, err error) (*Session, error) {
	reason := "error"
	switch {
	case errors.Is(err, ErrDiskFull) || isDiskFull(err):
		reason = "disk_full"
		r.forgetFree()
	case errors.Is(err, errBacklog):
		reason = "backlog"
	}
	attrs := []any{"reason", reason, "connection_id", info.ConnectionID, "connection", info.ConnectionName,
		"gateway_id", info.GatewayID, "request_id", info.RequestID, "error", err}
	if refuse {
		r.metrics.refused.WithLabelValues(reason).Inc()
		r.log.Error("session refused: it cannot be recorded and the connection's recording policy is on_disk_full=refuse", attrs...)
		if reason == "disk_full" && !errors.Is(err, ErrDiskFull) {
			return nil, fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		if reason != "disk_full" {
			return nil, fmt.Errorf("%w: %w", ErrRecordingFailed, err)
		}
		return nil, err
	}
	r.metrics.unrecorded.WithLabelValues(reason).Inc()
	r.log.Error("ALERT: session running UNRECORDED: it cannot be recorded and the connection's recording policy is on_disk_full=continue", attrs...)
	return nil, nil
}

// sessionEnded is called by a session once it is closed.
func (r *Recorder) sessionEnded(s *Session, size int64) {
	r.mu.Lock()
	delete(r.active, s.id)
	r.mu.Unlock()
	r.metrics.active.Dec()
	if r.total.Add(size) > r.opts.MaxBytes && r.opts.MaxBytes > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

func (r *Recorder) isActive(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.active[id]
	return ok
}

// open creates the file and writes the header and session_start.
func (s *Session) open(now time.Time) error {
	day := now.Format(time.DateOnly)
	if err := s.r.dayDir(day, false); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		// Retention removed the day's directory when it emptied.
		if err := s.r.dayDir(day, true); err != nil {
			return err
		}
		f, err = os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return fmt.Errorf("creating the recording: %w", err)
	}
	s.f, s.w = f, bufio.NewWriterSize(f, 32<<10)
	hdr, err := json.Marshal(Header{Format: FormatName, Version: FormatVersion, SessionID: s.id, StartedAt: now, KeyFingerprint: s.r.fp})
	if err != nil {
		s.abandon()
		return fmt.Errorf("encoding the header: %w", err)
	}
	head := appendFrame([]byte(Magic), hdr)
	s.headerHash = sha256.Sum256(head)
	s.prev = s.headerHash
	if _, err := s.w.Write(head); err != nil {
		s.abandon()
		return fmt.Errorf("writing the recording: %w", err)
	}
	s.size = int64(len(head))
	// Not appendLocked: StartSession applies the policy to a failed start.
	p, err := s.encode(TypeSessionStart, s.info)
	if err != nil {
		s.abandon()
		return err
	}
	if err := s.writeRecord(TypeSessionStart, "", p, now, true); err != nil {
		s.abandon()
		return err
	}
	return nil
}

// abandon removes a recording that never got going.
func (s *Session) abandon() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.path)
		s.f = nil
	}
}

var idEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// newSessionID returns "ses_" and 26 base32 characters: 48 bits of Unix
// milliseconds then 80 random bits. The alphabet is in ASCII order, so ids
// sort by start time.
func newSessionID(t time.Time) (string, error) {
	var b [16]byte
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli()))
	copy(b[:6], ms[2:])
	if _, err := rand.Read(b[6:]); err != nil {
		return "", fmt.Errorf("generating a session id: %w", err)
	}
	return "ses_" + idEncoding.EncodeToString(b[:]), nil
}

// SessionTime returns the start time encoded in a session id, and whether
// id is a well-formed session id.
func SessionTime(id string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(id, "ses_")
	if !ok || len(rest) != 26 {
		return time.Time{}, false
	}
	b, err := idEncoding.DecodeString(rest)
	if err != nil || len(b) != 16 {
		return time.Time{}, false
	}
	var ms [8]byte
	copy(ms[2:], b[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:]))).UTC(), true
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }

type metrics struct {
	unrecorded *prometheus.CounterVec
	refused    *prometheus.CounterVec
	active     prometheus.Gauge
	recorded   prometheus.Counter
	bytes      prometheus.Counter
	pruned     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		unrecorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_recording_unrecorded_sessions_total",
			Help: "Sessions (or their remainder) that ran unrecorded under on_disk_full=continue, by reason (disk_full, error, backlog).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sallyport_recording_refused_sessions_total",
			Help: "Sessions refused (or failed) because they could not be recorded under on_disk_full=refuse, by reason.",
		}, []string{"reason"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sallyport_recording_sessions_active",
			Help: "Sessions being recorded.",
		}),
		recorded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recording_sessions_total",
			Help: "Sessions recorded, signed and anchored.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recording_bytes_written_total",
			Help: "Bytes written to recordings.",
		}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sallyport_recording_pruned_sessions_total",
			Help: "Recordings deleted by retention.",
		}),
	}
	for _, reason := range []string{"disk_full", "error", "backlog"} {
		m.unrecorded.WithLabelValues(reason)
		m.refused.WithLabelValues(reason)
	}
	if reg != nil {
		m.unrecorded = register(reg, m.unrecorded)
		m.refused = register(reg, m.refused)
		m.active = register(reg, m.active)
		m.recorded = register(reg, m.recorded)
		m.bytes = register(reg, m.bytes)
		m.pruned = register(reg, m.pruned)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (a recorder re-created in the same process shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("recording: registering a metric: %v", err))
	}
	return c
}
