package ledgerstore

import (
	"cmp"
	"slices"
)

// entryOverheadBytes is what one cached entry costs beyond its data (map
// slots, slice header), counted so that many tiny entries cannot blow the
// memory bound.
const entryOverheadBytes = 64

func entryCost(n int) int64 { return int64(n) + entryOverheadBytes }

// writeCache holds entries added since the last swap. It is a plain data
// structure; Store.mu guards it. Entry data slices are immutable once put.
type writeCache struct {
	ledgers map[int64]*cachedLedger
	bytes   int64
	count   int
}

type cachedLedger struct {
	entries  map[int64][]byte
	maxEntry int64
}

func newWriteCache() *writeCache {
	return &writeCache{ledgers: make(map[int64]*cachedLedger)}
}

// put stores data (which the cache now owns). A second put of the same
// entry replaces the first.
func (c *writeCache) put(ledgerID, entryID int64, data []byte) {
	l := c.ledgers[ledgerID]
	if l == nil {
		l = &cachedLedger{entries: make(map[int64][]byte), maxEntry: -1}
		c.ledgers[ledgerID] = l
	}
	if old, ok := l.entries[entryID]; ok {
		c.bytes -= entryCost(len(old))
		c.count--
	}
	l.entries[entryID] = data
	l.maxEntry = max(l.maxEntry, entryID)
	c.bytes += entryCost(len(data))
	c.count++
}

func (c *writeCache) get(ledgerID, entryID int64) ([]byte, bool) {
	l := c.ledgers[ledgerID]
	if l == nil {
		return nil, false
	}
	d, ok := l.entries[entryID]
	return d, ok
}

func (c *writeCache) has(ledgerID, entryID int64) bool {
	_, ok := c.get(ledgerID, entryID)
	return ok
}

// last returns the highest cached entry id of a ledger, or -1.
func (c *writeCache) last(ledgerID int64) int64 {
	if l := c.ledgers[ledgerID]; l != nil {
		return l.maxEntry
	}
	return -1
}

func (c *writeCache) hasLedger(ledgerID int64) bool { return c.ledgers[ledgerID] != nil }

// drop removes every entry of a ledger.
func (c *writeCache) drop(ledgerID int64) {
	l := c.ledgers[ledgerID]
	if l == nil {
		return
	}
	for _, d := range l.entries {
		c.bytes -= entryCost(len(d))
	}
	c.count -= len(l.entries)
	delete(c.ledgers, ledgerID)
}

type cachedEntry struct {
	ledgerID, entryID int64
	data              []byte
}

// list returns every entry, unordered.
func (c *writeCache) list() []cachedEntry {
	out := make([]cachedEntry, 0, c.count)
	for lid, l := range c.ledgers {
		for eid, d := range l.entries {
			out = append(out, cachedEntry{lid, eid, d})
		}
	}
	return out
}

// sortEntries orders entries by (ledger, entry): the order a flush writes
// them in, so that a ledger's entries sit together in the entry log and a
// catch-up read of a ledger is sequential.
func sortEntries(out []cachedEntry) {
	slices.SortFunc(out, func(a, b cachedEntry) int {
		if c := cmp.Compare(a.ledgerID, b.ledgerID); c != 0 {
			return c
		}
		return cmp.Compare(a.entryID, b.entryID)
	})
}
