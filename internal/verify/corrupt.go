package verify

import (
	ebin "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Offline file corruption of a stopped bookie (Jepsen's bit-flip nemesis,
// aimed with the entry-log format of package entrylog's documentation):
// a 16-byte file header, then records of [u32 length n][u32 crc][i64
// ledger][i64 entry][n bytes payload].

const (
	entryLogHeaderBytes = 16
	entryLogRecordHead  = 24
)

type entryLogRecord struct {
	path     string
	offset   int64 // of the record's header
	length   int64 // payload bytes
	ledgerID int64
	entryID  int64
}

// scanEntryLogs lists every record of ledgerID in the entry logs under a
// bookie's data directory, stopping in each file at the first record that
// does not parse (a torn tail).
func scanEntryLogs(bookieDir string, ledgerID int64) ([]entryLogRecord, error) {
	files, err := filepath.Glob(filepath.Join(bookieDir, "ledgers", "logs", "*.log"))
	if err != nil {
		return nil, err
	}
	var out []entryLogRecord
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		off := int64(entryLogHeaderBytes)
		for off+entryLogRecordHead <= int64(len(b)) {
			n := int64(ebin.BigEndian.Uint32(b[off:]))
			if n == 0 || off+entryLogRecordHead+n > int64(len(b)) {
				break
			}
			led := int64(ebin.BigEndian.Uint64(b[off+8:]))
			ent := int64(ebin.BigEndian.Uint64(b[off+16:]))
			if led == ledgerID {
				out = append(out, entryLogRecord{path: path, offset: off, length: n, ledgerID: led, entryID: ent})
			}
			off += entryLogRecordHead + n
		}
	}
	return out, nil
}

// corruptLastEntries flips one payload byte of each of the last k entries
// of ledgerID in a stopped bookie's entry logs (every stored copy of
// each). The bookie's checksums must turn each into a corrupt-data answer,
// never "no such entry". It returns the entry ids corrupted.
func corruptLastEntries(bookieDir string, ledgerID int64, k int) ([]int64, error) {
	recs, err := scanEntryLogs(bookieDir, ledgerID)
	if err != nil {
		return nil, err
	}
	ids := map[int64]bool{}
	for _, r := range recs {
		ids[r.entryID] = true
	}
	var sorted []int64
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] > sorted[j] })
	if len(sorted) > k {
		sorted = sorted[:k]
	}
	chosen := map[int64]bool{}
	for _, id := range sorted {
		chosen[id] = true
	}
	for _, r := range recs {
		if !chosen[r.entryID] {
			continue
		}
		f, err := os.OpenFile(r.path, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		at := r.offset + entryLogRecordHead + r.length/2
		var one [1]byte
		if _, err := f.ReadAt(one[:], at); err == nil {
			one[0] ^= 0x5a
			_, err = f.WriteAt(one[:], at)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("corrupt %s at %d: %w", r.path, at, err)
		}
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted, nil
}
