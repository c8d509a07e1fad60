package recording

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

func TestDiskFullPolicies(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 20) // 1 MiB: below the 64 MiB floor
	f := newFixture(t, func(o *Options) {
		o.FreeSpace = func(dir string) (uint64, error) {
			if !strings.HasSuffix(dir, Dir) {
				t.Errorf("free space asked of %s", dir)
			}
			return free.Load(), nil
		}
	})

	s, err := f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: true}) // refuse is the default
	if s != nil || !errors.Is(err, ErrDiskFull) {
		t.Fatalf("refuse: %v, %v", s, err)
	}
	if got := counter(t, f.reg, "sallyport_recording_refused_sessions_total", "reason", "disk_full"); got != 1 {
		t.Fatalf("refused counter %v", got)
	}
	if list, _ := f.rec.ListSessions(context.Background(), ListOptions{}); len(list) != 0 {
		t.Fatalf("a refused session left a file: %+v", list)
	}

	s, err = f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: true, OnDiskFull: model.OnDiskFullContinue})
	if s != nil || err != nil {
		t.Fatalf("continue: %v, %v", s, err)
	}
	// The gateway goes on with a nil session.
	must(t, s.HTTPRequest(HTTPRequest{Method: "GET", Path: "/"}))
	must(t, s.Close())
	if got := counter(t, f.reg, "sallyport_recording_unrecorded_sessions_total", "reason", "disk_full"); got != 1 {
		t.Fatalf("unrecorded counter %v", got)
	}
	if !containsAny(f.logs.String(), `"level":"ERROR","msg":"ALERT: session running UNRECORDED`) {
		t.Fatalf("no ERROR alert logged:\n%s", f.logs.String())
	}

	free.Store(1 << 30)
	s, err = f.rec.StartSession(context.Background(), testInfo(), testPolicy)
	if s == nil || err != nil {
		t.Fatalf("with room again: %v, %v", s, err)
	}
	must(t, s.Close())
}

// TestRealDiskFull fills a real (tiny tmpfs) filesystem, so the ENOSPC
// comes from the kernel. Mounting needs root (CAP_SYS_ADMIN): skipped
// otherwise.
func TestRealDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; the disk-full policy is covered by TestDiskFullPolicies")
	}
	mnt := filepath.Join(t.TempDir(), "tiny")
	must(t, os.Mkdir(mnt, 0o700))
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=192k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})

	// statfs sees a 192 KiB disk: below the default floor, refused up
	// front.
	strict := newFixture(t, func(o *Options) { o.Dir, o.FreeSpace = mnt, nil })
	if _, err := strict.rec.StartSession(context.Background(), testInfo(), testPolicy); !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("statfs check: %v", err)
	}

	// Without the floor, the disk fills mid-session.
	f := newFixture(t, func(o *Options) { o.Dir, o.FreeSpace, o.MinFreeBytes = mnt, nil, -1 })
	s, err := f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: true, MaxBodyBytes: 1 << 20})
	must(t, err)
	body := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB, 43 KiB as base64
	var werr error
	for i := 0; i < 20 && werr == nil; i++ {
		werr = s.HTTPResponse(HTTPResponse{Status: 200, Body: body, BodySize: int64(len(body))})
	}
	if !errors.Is(werr, ErrDiskFull) || !errors.Is(werr, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v", werr)
	}
	if err := s.HTTPResponse(HTTPResponse{Status: 200}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after the failure: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Close after the failure: %v", err)
	}
	res, err := Verify(f.path(s.ID()), f.rec.PublicKey(), nil)
	must(t, err)
	if res.Status != StatusIncomplete || res.FirstBad != nil {
		t.Fatalf("the file of the failed session: %+v", res)
	}
	if _, err := f.st.GetAnchor(context.Background(), s.ID()); err == nil {
		t.Fatal("a failed session was anchored")
	}

	// "continue": the session runs unrecorded, with an alert and a count.
	c, err := f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: true, OnDiskFull: model.OnDiskFullContinue, MaxBodyBytes: 1 << 20})
	if c != nil || err != nil {
		t.Fatalf("continue on a full disk: %v, %v (want an unrecorded session)", c, err)
	}
	for range 5 {
		must(t, c.HTTPResponse(HTTPResponse{Status: 200, Body: body, BodySize: int64(len(body))}))
	}
	must(t, c.Close())
	if got := counter(t, f.reg, "sallyport_recording_unrecorded_sessions_total", "reason", "disk_full"); got != 1 {
		t.Fatalf("unrecorded counter %v", got)
	}
	if !strings.Contains(f.logs.String(), `"level":"ERROR"`) || !strings.Contains(f.logs.String(), "UNRECORDED") {
		t.Fatalf("no alert:\n%s", f.logs.String())
	}
	// A session that could not start leaves no file: only the failed one
	// is there.
	list, err := f.rec.Archive().List(ListOptions{})
	must(t, err)
	if len(list) != 1 || list[0].ID != s.ID() {
		t.Fatalf("recordings on the full disk: %+v", list)
	}

	// "continue" when the disk fills mid-session: the calls go on without
	// error, the rest is unrecorded, alerted and counted.
	must(t, os.Remove(f.path(s.ID())))
	mid, err := f.rec.StartSession(context.Background(), testInfo(), model.RecordingSpec{Enabled: true, OnDiskFull: model.OnDiskFullContinue, MaxBodyBytes: 1 << 20})
	if mid == nil || err != nil {
		t.Fatalf("continue with room: %v, %v", mid, err)
	}
	for range 20 {
		must(t, mid.HTTPResponse(HTTPResponse{Status: 200, Body: body, BodySize: int64(len(body))}))
	}
	must(t, mid.Close())
	if got := counter(t, f.reg, "sallyport_recording_unrecorded_sessions_total", "reason", "disk_full"); got != 2 {
		t.Fatalf("unrecorded counter %v after a mid-session failure", got)
	}
	if res, _ := Verify(f.path(mid.ID()), f.rec.PublicKey(), nil); res.Status != StatusIncomplete {
		t.Fatalf("the file of the unrecorded remainder: %+v", res)
	}

	// Room again: recording resumes.
	must(t, os.Remove(f.path(mid.ID())))
	ok, err := f.rec.StartSession(context.Background(), testInfo(), testPolicy)
	must(t, err)
	must(t, ok.Close())
	res, err = Verify(f.path(ok.ID()), f.rec.PublicKey(), f.anchor(ok.ID()))
	must(t, err)
	if !res.OK {
		t.Fatalf("after freeing space: %s", res.Summary())
	}
}
