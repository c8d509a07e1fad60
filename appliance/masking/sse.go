package masking

import (
	"bytes"
	"errors"
	"fmt"
)

// sseProc masks a text/event-stream event by event: it holds one event
// (up to Limits.MaxEventBytes) and passes it on masked once its blank
// line arrives, so a stream flows as its events do. An event's data
// lines are joined as the protocol says; data that is JSON is masked as
// JSON (json_path and text rules), other data as text. Comments and the
// values of other fields are masked as text. Line ends become "\n".
type sseProc struct {
	st   *state
	out  *[]byte
	cr   bool   // the last byte was '\r' (a following '\n' is part of it)
	line []byte // the current line
	ev   []byte // the current event's lines, each ending in '\n'
	data []byte
	tmp  []byte
	json *jsonProc
}

func newSSEProc(st *state, out *[]byte) *sseProc {
	s := &sseProc{st: st, out: out}
	s.json = newJSONProc(st, &s.tmp, false)
	return s
}

func (s *sseProc) write(p []byte) error {
	for len(p) > 0 {
		if s.cr && p[0] == '\n' {
			s.cr = false
			p = p[1:]
			continue
		}
		s.cr = false
		k := bytes.IndexAny(p, "\r\n")
		if k < 0 {
			s.line = append(s.line, p...)
			return s.checkSize()
		}
		s.line = append(s.line, p[:k]...)
		s.cr = p[k] == '\r'
		p = p[k+1:]
		if err := s.endLine(); err != nil {
			return err
		}
	}
	return nil
}

func (s *sseProc) checkSize() error {
	if len(s.ev)+len(s.line) > s.st.m.lim.MaxEventBytes {
		return fmt.Errorf("%w: a server-sent event is larger than %d bytes", ErrUnmaskable, s.st.m.lim.MaxEventBytes)
	}
	return nil
}

func (s *sseProc) endLine() error {
	if err := s.checkSize(); err != nil {
		return err
	}
	if len(s.line) == 0 {
		return s.endEvent(true)
	}
	s.ev = append(s.ev, s.line...)
	s.ev = append(s.ev, '\n')
	s.line = s.line[:0]
	return nil
}

// close passes on an event the stream ended without a blank line after.
func (s *sseProc) close() error {
	if len(s.line) > 0 {
		s.ev = append(s.ev, s.line...)
		s.ev = append(s.ev, '\n')
		s.line = s.line[:0]
	}
	if len(s.ev) == 0 {
		return nil
	}
	return s.endEvent(false)
}

// endEvent masks and emits the held event.
func (s *sseProc) endEvent(blank bool) error {
	out := *s.out
	s.data = s.data[:0]
	dataAt, hasData := 0, false
	for rest := s.ev; len(rest) > 0; {
		k := bytes.IndexByte(rest, '\n')
		line := rest[:k]
		rest = rest[k+1:]
		if line[0] == ':' {
			out = append(out, ':')
			out, _ = s.st.maskAll(out, line[1:], false)
			out = append(out, '\n')
			continue
		}
		name, value, colon := bytes.Cut(line, []byte{':'})
		if colon && len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(name) == "data" {
			if hasData {
				s.data = append(s.data, '\n')
			} else {
				hasData, dataAt = true, len(out)
			}
			s.data = append(s.data, value...)
			continue
		}
		out = append(out, name...)
		if colon {
			out = append(out, ':', ' ')
			out, _ = s.st.maskAll(out, value, false)
		}
		out = append(out, '\n')
	}
	if hasData {
		masked, err := s.maskData()
		if err != nil {
			return err
		}
		// The data lines go where the first one was.
		var lines []byte
		for {
			k := bytes.IndexByte(masked, '\n')
			if k < 0 {
				break
			}
			lines = append(append(append(lines, "data: "...), masked[:k]...), '\n')
			masked = masked[k+1:]
		}
		lines = append(append(append(lines, "data: "...), masked...), '\n')
		out = append(out[:dataAt], append(lines, out[dataAt:]...)...)
	}
	if blank {
		out = append(out, '\n')
	}
	*s.out = out
	s.ev = s.ev[:0]
	return nil
}

// maskData masks an event's data: as JSON when it is JSON, as text
// otherwise. Data that is not JSON but has an object in it cannot carry
// json_path matches safely (a malformed object would slip past the
// paths), so with json_path rules it is refused.
func (s *sseProc) maskData() ([]byte, error) {
	s.tmp = s.tmp[:0]
	s.json.reset()
	err := s.json.write(s.data)
	if err == nil {
		err = s.json.close()
	}
	if err == nil {
		return s.tmp, nil
	}
	if !errors.Is(err, ErrUnmaskable) || len(s.st.m.paths) > 0 && bytes.ContainsAny(s.data, `{"`) {
		return nil, fmt.Errorf("server-sent event data: %w", err)
	}
	s.tmp, _ = s.st.maskAll(s.tmp[:0], s.data, false)
	return s.tmp, nil
}
