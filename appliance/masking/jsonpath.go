package masking

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sallyport/terraform-provider-sallyport/appliance/model"
)

// step is one JSONPath step: a child (".name", "[N]", ".*", "[*]",
// "['name']") or, with desc, any descendant ("..name", "..*").
type step struct {
	desc  bool
	wild  bool
	name  string
	index int // -1 unless "[N]"
}

// pathRule is a compiled json_path rule.
type pathRule struct {
	idx   int
	repl  replacement
	steps []step
}

// parsePath compiles the JSONPath subset of model.CheckJSONPath.
func parsePath(s string) (pathRule, error) {
	if err := model.CheckJSONPath(s); err != nil {
		return pathRule{}, err
	}
	var p pathRule
	rest := s[1:]
	for rest != "" {
		st := step{index: -1}
		switch {
		case strings.HasPrefix(rest, "["):
			end := strings.IndexByte(rest, ']')
			if strings.HasPrefix(rest, "['") {
				end = strings.Index(rest, "']") + 1
			}
			inner := rest[1:end]
			rest = rest[end+1:]
			switch {
			case inner == "*":
				st.wild = true
			case strings.HasPrefix(inner, "'"):
				st.name = inner[1 : len(inner)-1]
			default:
				n, err := strconv.Atoi(inner)
				if err != nil {
					return pathRule{}, fmt.Errorf("index %q: %w", inner, err)
				}
				st.index = n
			}
		case strings.HasPrefix(rest, ".."):
			st.desc = true
			rest = rest[2:]
			st.name, rest = cutName(rest)
		default: // "."
			st.name, rest = cutName(rest[1:])
		}
		if st.name == "*" {
			st.name, st.wild = "", true
		}
		p.steps = append(p.steps, st)
	}
	if len(p.steps) == 0 {
		return pathRule{}, fmt.Errorf("%q selects the whole document: name at least one step", s)
	}
	return p, nil
}

// cutName splits a dotted step's name (or "*") from what follows.
func cutName(s string) (string, string) {
	end := strings.IndexAny(s, ".[")
	if end < 0 {
		return s, ""
	}
	return s[:end], s[end:]
}

// matches reports whether the step selects a child: an object member
// named key (isKey) or an array element at index.
func (st *step) matches(key []byte, index int, isKey bool) bool {
	switch {
	case st.wild:
		return true
	case isKey:
		return st.index < 0 && st.name == string(key)
	default:
		return st.index == index
	}
}

// pstate is a position in a path: steps[:step] of paths[path] have
// matched on the way to the current value.
type pstate struct{ path, step uint16 }

// childSet computes the positions of a child from its parent's, into dst,
// and returns the index (in Masker.paths, which is in rule order) of the
// first path that selects the child whole, or -1.
func (m *Masker) childSet(dst, parent []pstate, key []byte, index int, isKey bool) ([]pstate, int) {
	dst = dst[:0]
	matched := -1
	for _, ps := range parent {
		steps := m.paths[ps.path].steps
		st := &steps[ps.step]
		if st.matches(key, index, isKey) {
			if int(ps.step)+1 == len(steps) {
				if matched < 0 || int(ps.path) < matched {
					matched = int(ps.path)
				}
			} else {
				dst = addPState(dst, pstate{ps.path, ps.step + 1})
			}
		}
		if st.desc {
			dst = addPState(dst, ps)
		}
	}
	return dst, matched
}

// addPState adds p to set unless it is there already.
func addPState(set []pstate, p pstate) []pstate {
	for _, q := range set {
		if q == p {
			return set
		}
	}
	return append(set, p)
}
