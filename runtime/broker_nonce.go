package runtime

import (
	"crypto/rand"
	"errors"
	"sync"
	"time"
)

// NonceSize is the length of a broker nonce in bytes.
const NonceSize = 32

// Nonce refusals. The broker names them in its 403 answers.
var (
	// ErrNoncesFull: the broker holds as many outstanding nonces as it may.
	ErrNoncesFull = errors.New("too many outstanding nonces")
	// ErrNonceUnknown: the broker never issued this nonce (or forgot it
	// when it expired).
	ErrNonceUnknown = errors.New("the nonce was not issued by this broker, or expired long ago")
	// ErrNonceExpired: issued, but its lifetime is over.
	ErrNonceExpired = errors.New("the nonce expired")
	// ErrNonceUsed: issued and already presented once (a replay).
	ErrNonceUsed = errors.New("the nonce was already used (replay)")
)

// nonceStore holds issued nonces until they expire. A nonce is taken once:
// the first presentation consumes it, pass or fail; it is kept, marked
// used, until it expires, so a replay is named as one. Its size is capped:
// used and unused entries both count, and expired ones are swept when the
// cap is reached, so a client asking for nonces in a loop gets
// ErrNoncesFull, never the broker's memory.
type nonceStore struct {
	mu  sync.Mutex
	ttl time.Duration
	max int
	now func() time.Time
	m   map[[NonceSize]byte]nonceEntry
	// order lists the nonces in the order issued, which is the order they
	// expire in (one lifetime for all): sweeping pops from the front.
	order [][NonceSize]byte
}

type nonceEntry struct {
	expires time.Time
	used    bool
}

func newNonceStore(ttl time.Duration, max int, now func() time.Time) *nonceStore {
	return &nonceStore{ttl: ttl, max: max, now: now, m: map[[NonceSize]byte]nonceEntry{}}
}

// issue returns a fresh random nonce and when it expires.
func (s *nonceStore) issue() ([]byte, time.Time, error) {
	var n [NonceSize]byte
	if _, err := rand.Read(n[:]); err != nil {
		return nil, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweep(now)
	if len(s.m) >= s.max {
		return nil, time.Time{}, ErrNoncesFull
	}
	exp := now.Add(s.ttl)
	s.m[n] = nonceEntry{expires: exp}
	s.order = append(s.order, n)
	return n[:], exp, nil
}

// take consumes a nonce: nil only for one issued here, unexpired and
// never presented before.
func (s *nonceStore) take(n []byte) error {
	if len(n) != NonceSize {
		return ErrNonceUnknown
	}
	k := [NonceSize]byte(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	switch {
	case !ok:
		return ErrNonceUnknown
	case e.used:
		return ErrNonceUsed
	}
	e.used = true
	s.m[k] = e
	if !s.now().Before(e.expires) {
		return ErrNonceExpired
	}
	return nil
}

// sweep forgets expired entries, oldest first, in time proportional to
// what it removes; the caller holds mu.
func (s *nonceStore) sweep(now time.Time) {
	i := 0
	for ; i < len(s.order); i++ {
		if now.Before(s.m[s.order[i]].expires) {
			break
		}
		delete(s.m, s.order[i])
	}
	s.order = s.order[i:]
}

// outstanding counts the entries held (used or not, expired or not yet
// swept).
func (s *nonceStore) outstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
