package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The generated section replaces only what lies between the markers, so
// the hand-written analysis around it survives every run.
func TestWriteReportKeepsTheTextAroundTheMarkers(t *testing.T) {
	r := newResults(DefaultConfig())
	r.set(RowNginx, "h1-64.rps", 0, 100)
	r.set(RowPlain, "h1-64.rps", 0, 60)
	r.set(RowNginx, "h1-64.rps", 1, 200)
	r.set(RowPlain, "h1-64.rps", 1, 160)
	path := filepath.Join(t.TempDir(), "benchmarks.md")

	if err := os.WriteFile(path, []byte("# Mine\n\nintro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(path, r); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# Mine\n\nintro\n\n"+BeginMarker) || !strings.Contains(string(b), EndMarker) {
		t.Fatalf("markers not appended after the existing text:\n%s", b)
	}

	withFooter := string(b) + "\n## Findings\n\nkept\n"
	if err := os.WriteFile(path, []byte(withFooter), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteReport(path, r); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	s := string(b)
	if !strings.HasPrefix(s, "# Mine\n\nintro\n") || !strings.HasSuffix(s, "## Findings\n\nkept\n") {
		t.Fatalf("text around the markers changed:\n%s", s)
	}
	if strings.Count(s, BeginMarker) != 1 {
		t.Fatalf("%d generated sections", strings.Count(s, BeginMarker))
	}
	// The ratio is the median of the per-round ratios: 0.6 and 0.8.
	if !strings.Contains(s, "h1-64 0.70×") {
		t.Errorf("the targets table lacks the median ratio to nginx:\n%s", s)
	}
}
