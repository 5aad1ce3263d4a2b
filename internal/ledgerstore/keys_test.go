package ledgerstore

import (
	"bytes"
	"testing"

	"github.com/dlog-io/dlog/internal/entrylog"
)

func TestKeysRoundTrip(t *testing.T) {
	tests := []struct {
		name          string
		ledger, entry int64
	}{
		{name: "zero", ledger: 0, entry: 0},
		{name: "small", ledger: 7, entry: 42},
		{name: "max", ledger: 1<<63 - 1, entry: 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, e, err := decodeIndexKey(indexKey(tt.ledger, tt.entry))
			require.NoError(t, err)
			require.Equal(t, [2]int64{tt.ledger, tt.entry}, [2]int64{l, e})
			lower, upper := ledgerIndexBounds(tt.ledger)
			k := indexKey(tt.ledger, tt.entry)
			require.True(t, bytes.Compare(lower, k) <= 0 && (upper == nil || bytes.Compare(k, upper) < 0))
			if tt.ledger < 1<<63-1 {
				require.True(t, bytes.Compare(indexKey(tt.ledger+1, 0), upper) >= 0)
			}
			id, err := decodeLedgerKey(ledgerKey(tt.ledger))
			require.NoError(t, err)
			require.Equal(t, tt.ledger, id)
			lg, ld, err := decodeUsageKey(usageKey(tt.entry+1, tt.ledger))
			if tt.entry+1 > 0 {
				require.NoError(t, err)
				require.Equal(t, [2]int64{tt.entry + 1, tt.ledger}, [2]int64{lg, ld})
			}
		})
	}
	// Entry keys of one ledger sort by entry id.
	require.True(t, bytes.Compare(indexKey(3, 255), indexKey(3, 256)) < 0)
	require.True(t, bytes.Compare(indexKey(3, 1<<40), indexKey(4, 0)) < 0)
}

func TestLedgerValueRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    ledgerMeta
	}{
		{name: "empty", m: ledgerMeta{lac: -1}},
		{name: "fenced-lac", m: ledgerMeta{fenced: true, lac: 99}},
		{name: "empty-key", m: ledgerMeta{lac: 3, masterKey: []byte{}}},
		{name: "key", m: ledgerMeta{lac: 3, masterKey: []byte("pw")}},
		{name: "tombstone", m: ledgerMeta{deleted: true, lac: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeLedgerValue(ledgerValue(tt.m))
			require.NoError(t, err)
			require.Equal(t, tt.m, got)
		})
	}
}

func FuzzIndexKey(f *testing.F) {
	f.Add(indexKey(1, 2))
	f.Add([]byte{prefixIndex})
	f.Fuzz(func(t *testing.T, k []byte) {
		l, e, err := decodeIndexKey(k)
		if err != nil {
			return
		}
		if !bytes.Equal(indexKey(l, e), k) {
			t.Fatalf("index key does not round-trip")
		}
	})
}

func FuzzIndexValue(f *testing.F) {
	f.Add(indexValue(entrylog.Location{LogID: 1, Offset: 16, Size: 5}))
	f.Add(make([]byte, 20))
	f.Fuzz(func(t *testing.T, v []byte) {
		loc, err := decodeIndexValue(v)
		if err != nil {
			return
		}
		if loc.LogID <= 0 || loc.Size < 0 || !bytes.Equal(indexValue(loc), v) {
			t.Fatalf("index value does not round-trip: %+v", loc)
		}
	})
}

func FuzzLedgerKeyValue(f *testing.F) {
	f.Add(ledgerKey(5), ledgerValue(ledgerMeta{fenced: true, lac: 4, masterKey: []byte("k")}))
	f.Add([]byte{prefixLedger}, []byte{1, 0xff})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if id, err := decodeLedgerKey(k); err == nil && !bytes.Equal(ledgerKey(id), k) {
			t.Fatalf("ledger key does not round-trip")
		}
		m, err := decodeLedgerValue(v)
		if err != nil {
			return
		}
		if !bytes.Equal(ledgerValue(m), v) {
			t.Fatalf("ledger value does not round-trip: %+v", m)
		}
	})
}

func FuzzUsageKeyValue(f *testing.F) {
	f.Add(usageKey(3, 4), usageValue(100))
	f.Add([]byte{prefixUsage, 0}, []byte{0xff})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if lg, ld, err := decodeUsageKey(k); err == nil && !bytes.Equal(usageKey(lg, ld), k) {
			t.Fatalf("usage key does not round-trip")
		}
		if n, err := decodeUsageValue(v); err == nil && !bytes.Equal(usageValue(n), v) {
			t.Fatalf("usage value does not round-trip")
		}
	})
}
