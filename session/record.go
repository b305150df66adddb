package session

import "github.com/hushmsg/hush/key"

// MaxArchivedStates is how many earlier sessions a record keeps, so that
// messages from a session replaced by simultaneous initiation or a reset
// still decrypt (libsignal ARCHIVED_STATES_MAX_LENGTH).
const MaxArchivedStates = 40

// Record is everything known about the sessions with one device: the
// current session and up to MaxArchivedStates earlier ones, newest first.
// It serializes as libsignal's RecordStructure.
type Record struct {
	current  *State
	previous [][]byte // serialized SessionStructure, newest first
}

// NewRecord returns an empty record.
func NewRecord() *Record { return &Record{} }

// Current returns the current session, or nil.
func (r *Record) Current() *State { return r.current }

// ArchivedCount is the number of earlier sessions kept.
func (r *Record) ArchivedCount() int { return len(r.previous) }

// ParseRecord decodes a serialized record. The current session is checked
// now; archived ones when they are tried.
func ParseRecord(b []byte) (*Record, error) { return decodeRecord(b) }

// MarshalBinary encodes the record. The result holds private keys.
func (r *Record) MarshalBinary() ([]byte, error) { return encodeRecord(r), nil }

// AppendBinary appends the encoding MarshalBinary returns to b
// (encoding.BinaryAppender): a caller encoding many records can reuse one
// buffer. The bytes appended hold private keys; clear them when done.
func (r *Record) AppendBinary(b []byte) ([]byte, error) { return appendRecord(b, r), nil }

// archived decodes archived session i.
func (r *Record) archived(i int) (*State, error) { return decodeState(r.previous[i]) }

// promote makes s the current session, archiving the one it replaces
// (libsignal SessionRecord::promote_state).
func (r *Record) promote(s *State) error {
	if err := r.archiveCurrent(); err != nil {
		return err
	}
	r.current = s
	return nil
}

// promoteArchived replaces archived session i by s and makes it current.
func (r *Record) promoteArchived(i int, s *State) error {
	r.previous = append(r.previous[:i:i], r.previous[i+1:]...)
	return r.promote(s)
}

// ArchiveCurrent moves the current session to the archive, so that the next
// message to the peer must start a new one (used when the peer's identity
// changed).
func (r *Record) ArchiveCurrent() error { return r.archiveCurrent() }

func (r *Record) archiveCurrent() error {
	if r.current == nil {
		return nil
	}
	s := *r.current
	s.Pending = nil // an archived session is never used to send
	b := appendState(nil, &s)
	if len(r.previous) >= MaxArchivedStates {
		r.previous = r.previous[:MaxArchivedStates-1]
	}
	r.previous = append([][]byte{b}, r.previous...)
	r.current = nil
	return nil
}

// findByBaseKey looks for a session made by the PreKey message with this
// version and base key, current first (libsignal promote_matching_session).
// It returns -1 for the current session, the archive index, or -2.
func (r *Record) findByBaseKey(version uint8, baseKey key.ECPublic) (int, *State, error) {
	if c := r.current; c != nil && c.Version == version && c.AliceBaseKey == baseKey {
		return -1, c, nil
	}
	for i := range r.previous {
		s, err := r.archived(i)
		if err != nil {
			return -2, nil, err
		}
		if s.Version == version && s.AliceBaseKey == baseKey {
			return i, s, nil
		}
	}
	return -2, nil, nil
}
