package delivery

import "sync"

// KeyLocks are mutexes by key (an endpoint's id or name), each made when
// first locked and dropped once nobody holds or waits for it. Changes of
// different endpoints never wait for each other, as they would sharing a
// fixed set of locks by hash: one tenant's changes in a loop do not slow
// another's.
type KeyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int // holders and waiters, under KeyLocks.mu
}

// Lock locks key and returns its unlock.
func (l *KeyLocks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*keyLock{}
	}
	k := l.m[key]
	if k == nil {
		k = &keyLock{}
		l.m[key] = k
	}
	k.refs++
	l.mu.Unlock()
	k.Lock()
	return func() {
		k.Unlock()
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
