package rbac

import (
	"sync"
	"sync/atomic"
)

// actionCache remembers, for each action Check has seen on each plane,
// which permission blocks of which roles permit it (Actions − NotActions,
// or DataActions − NotDataActions), as one bit per block. The answer for
// an action is computed once, over every role, the first time it is asked;
// after that a check tests a bit per assignment instead of matching the
// action against the role's patterns, whose data is scattered and mostly
// out of cache in a tenant with hundreds of roles in use. Requests name a
// few hundred distinct actions in practice; the cache stops growing at
// maxCachedActions, and actions beyond it are matched as before.
type actionCache struct {
	mu sync.Mutex // serialises additions
	// sets are immutable maps replaced on addition, read without a lock:
	// [0] control plane, [1] data plane.
	sets [2]atomic.Pointer[map[string]*actionBlocks]
}

const maxCachedActions = 1024

// actionBlocks is a bit set over the engine's permission blocks, numbered
// as Engine.blockStart numbers them.
type actionBlocks []uint64

func (a actionBlocks) has(b int32) bool { return a[b>>6]&(1<<(b&63)) != 0 }

func plane(data bool) int {
	if data {
		return 1
	}
	return 0
}

// blocksFor returns the blocks that permit the lower-case action a on its
// plane, computing and caching them on first use; nil when the cache is
// full and a is not in it.
func (e *Engine) blocksFor(a []byte, data bool) actionBlocks {
	set := &e.actions.sets[plane(data)]
	if m := set.Load(); m != nil {
		if bs, ok := (*m)[string(a)]; ok {
			return *bs
		}
		if len(*m) >= maxCachedActions {
			return nil // full: no lock for actions that will not be added
		}
	}
	e.actions.mu.Lock()
	defer e.actions.mu.Unlock()
	old := set.Load()
	if old != nil {
		if bs, ok := (*old)[string(a)]; ok {
			return *bs
		}
		if len(*old) >= maxCachedActions {
			return nil
		}
	}
	bs := make(actionBlocks, (e.blockCount()+63)/64)
	for r := range e.roles {
		for b := range e.roles[r].blocks {
			if e.roles[r].blocks[b].permits(a, data) {
				i := e.blockStart[r] + int32(b)
				bs[i>>6] |= 1 << (i & 63)
			}
		}
	}
	m := make(map[string]*actionBlocks, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[string(a)] = &bs
	set.Store(&m)
	return bs
}

func lenOf(m *map[string]*actionBlocks) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

func (e *Engine) blockCount() int32 { return e.blockStart[len(e.roles)] }
