package journal

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fixedRecords returns n records of exactly size bytes, each unique.
func fixedRecords(tag byte, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		b := bytes.Repeat([]byte{tag}, size)
		b[0], b[1], b[2] = byte(i), byte(i>>8), tag
		out[i] = b
	}
	return out
}

// TestRecycledFilesAreReused: released files are kept (up to
// RecycleFiles, renamed .journal.free) and become the next journal files
// instead of new zero-filled ones; the rest are deleted.
func TestRecycledFilesAreReused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.RecycleFiles = 2
	j, _ := openReplay(t, cfg, Position{})
	want := appendSeq(t, j, fixedRecords('a', 400, 500)) // ~200 KiB: 4 files or more
	files := journalFiles(t, vfs.Default, cfg.Dir).files
	atLeast(t, len(files), 4)

	mark := want[len(want)-1].end
	must.NoError(t, j.ReleaseBefore(mark))
	l := journalFiles(t, vfs.Default, cfg.Dir)
	must.Equal(t, []uint64{mark.File}, l.files)
	must.Equal(t, files[:2], l.free, "the oldest released files are kept")
	must.Empty(t, l.quarantined)

	more := appendSeq(t, j, fixedRecords('b', 400, 500))
	st := j.Stats()
	must.Equal(t, uint64(2), st.Recycled, "both kept files were recycled")
	l = journalFiles(t, vfs.Default, cfg.Dir)
	must.Empty(t, l.free)
	for _, id := range l.files {
		info, err := os.Stat(filepath.Join(cfg.Dir, fileName(id)))
		must.NoError(t, err)
		must.Equal(t, cfg.FileSizeBytes, info.Size(), "file %016x", id)
	}
	must.NoError(t, j.Close())
	requireSameRecords(t, more, reopenRecords(t, cfg, mark))

	// A smaller RecycleFiles trims what an earlier run kept.
	j, _ = openReplay(t, cfg, more[len(more)-1].end)
	must.NoError(t, j.ReleaseBefore(more[len(more)-1].end))
	must.Len(t, journalFiles(t, vfs.Default, cfg.Dir).free, 2)
	must.NoError(t, j.Close())
	cfg.RecycleFiles = 1
	j, _ = openReplay(t, cfg, more[len(more)-1].end)
	must.Len(t, journalFiles(t, vfs.Default, cfg.Dir).free, 1)
	must.NoError(t, j.Close())
}

// TestRecycledFileNeverReplaysEarlierLife fills files, releases and
// recycles them, writes fewer records of the same size in their new life
// (so the old records' boundaries line up with the new ones), and checks
// that a replay yields exactly the new life's records. Then it plants, in
// the recycled file right where the new records end, a well-formed record
// of the earlier life (what a crash could leave if the end marker never
// reached the disk): the replay must stop there and cut it, never yield it.
// The same record masked with the new life's salt would be accepted, which
// shows the check is what stops it.
func TestRecycledFileNeverReplaysEarlierLife(t *testing.T) {
	const size = 300
	cfg := testConfig(t, t.TempDir())
	cfg.FileSizeBytes = 16 << 10
	cfg.RecycleFiles = 8
	j, _ := openReplay(t, cfg, Position{})
	old := appendSeq(t, j, fixedRecords('o', 300, size)) // ~6 files
	mark := old[len(old)-1].end
	must.NoError(t, j.ReleaseBefore(mark))
	free := journalFiles(t, vfs.Default, cfg.Dir).free
	atLeast(t, len(free), 4)

	// Roll into the first recycled file and write a few records there.
	fill := appendSeq(t, j, fixedRecords('f', 40, size))
	for fill[len(fill)-1].end.File == mark.File {
		fill = append(fill, appendSeq(t, j, fixedRecords('f', 1, size))...)
	}
	recycledID := fill[len(fill)-1].end.File
	must.Equal(t, uint64(1), j.Stats().Recycled)
	more := appendSeq(t, j, fixedRecords('n', 3, size))
	must.Equal(t, recycledID, more[len(more)-1].end.File)
	must.NoError(t, j.Close())
	newLife := append(slices.Clone(fill), more...)
	requireSameRecords(t, newLife, reopenRecords(t, cfg, mark))

	// The earlier life's records are still in the file, past the end
	// marker page, at the same boundaries.
	path := filepath.Join(cfg.Dir, fileName(recycledID))
	content, err := os.ReadFile(path)
	must.NoError(t, err)
	end := more[len(more)-1].end.Offset
	oldSalt := fileSalt(fileFormatV2, free[0])
	var oldBeyond int
	for off := (end + endMarkerBytes + pageBytes - 1) / pageBytes * pageBytes; off < int64(len(content)); off++ {
		if _, _, st := decodeRecord(content[off:], oldSalt); st == recordOK {
			oldBeyond++
		}
	}
	atLeast(t, oldBeyond, 1, "the test needs earlier-life records after the end")

	for _, tc := range []struct {
		name   string
		salt   uint32
		accept bool
	}{
		{name: "earlier life's salt", salt: oldSalt},
		{name: "version 1 (no salt)", salt: 0},
		{name: "new life's salt (control)", salt: fileSalt(fileFormatV2, recycledID), accept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "journal")
			must.NoError(t, os.CopyFS(dir, os.DirFS(cfg.Dir)))
			planted := appendRecord(nil, bytes.Repeat([]byte{'x'}, size), tc.salt)
			writeAt(t, filepath.Join(dir, fileName(recycledID)), end, planted)
			c := testConfig(t, dir)
			j, got := openReplay(t, c, mark)
			if tc.accept {
				must.Len(t, got, len(newLife)+1)
				return
			}
			requireSameRecords(t, newLife, got)
			must.Equal(t, Position{File: recycledID, Offset: end}, j.Stats().ReplayCut)
			must.NoError(t, j.Close())
			requireSameRecords(t, newLife, reopenRecords(t, c, mark))
		})
	}
}

// TestReplayReadsVersion1 replays a journal written in version 1 (built
// by hand: 32-byte headers, unmasked checksums, zero-filled files), appends
// after it (into a version-2 file), and recycles the version-1 files.
func TestReplayReadsVersion1(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	must.NoError(t, os.MkdirAll(cfg.Dir, 0o755))
	recs := randomRecords(rand.New(rand.NewPCG(21, 21)), 400, 900)
	var want []appended
	var prev uint64
	for id, k := uint64(1), 0; k < len(recs); id++ {
		content := make([]byte, cfg.FileSizeBytes)
		off := copy(content, encodeV1(id, prev))
		for k < len(recs) && off+recordHeaderSize+len(recs[k]) <= len(content) {
			off += copy(content[off:], appendRecord(nil, recs[k], 0))
			want = append(want, appended{data: recs[k], end: Position{File: id, Offset: int64(off)}})
			k++
		}
		must.NoError(t, os.WriteFile(filepath.Join(cfg.Dir, fileName(id)), content, 0o644))
		prev = id
	}
	atLeast(t, prev, uint64(3))

	j, got := openReplay(t, cfg, Position{})
	requireSameRecords(t, want, got)
	more := appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(22, 22)), 100, 900))
	must.Equal(t, prev+1, more[0].end.File, "appends go to a new (version 2) file")
	must.NoError(t, j.Close())
	all := append(slices.Clone(want), more...)
	requireSameRecords(t, all, reopenRecords(t, cfg, Position{}))
	requireSameRecords(t, all[50:], reopenRecords(t, cfg, all[49].end))

	// Release the version-1 files; recycling them keeps everything after.
	j, _ = openReplay(t, cfg, want[len(want)-1].end)
	must.NoError(t, j.ReleaseBefore(want[len(want)-1].end))
	atLeast(t, len(journalFiles(t, vfs.Default, cfg.Dir).free), 2)
	evenMore := appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(23, 23)), 200, 900))
	atLeast(t, j.Stats().Recycled, uint64(1))
	must.NoError(t, j.Close())
	requireSameRecords(t, append(slices.Clone(more), evenMore...), reopenRecords(t, cfg, want[len(want)-1].end))
}

// TestOnGroupDone: the hook runs after the callbacks of every durable
// group, in order, with the last record's end, and never for failures.
func TestOnGroupDone(t *testing.T) {
	var (
		mu     sync.Mutex
		events []string // "r" for a record callback, "g" for the hook
		ends   []Position
		last   Position
		bad    []string
	)
	cfg := testConfig(t, t.TempDir())
	cfg.OnGroupDone = func(end Position) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, "g")
		if end != last {
			bad = append(bad, "hook end "+end.String()+", last record's "+last.String())
		}
		ends = append(ends, end)
	}
	gate := newSyncGate()
	cfg.FS = gate.wrap(vfs.Default)
	j, _ := openReplay(t, cfg, Position{})
	cb := func(end Position, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			bad = append(bad, err.Error())
		}
		events = append(events, "r")
		last = end
	}
	must.NoError(t, j.Append([]byte("first"), cb))
	gate.waitBlocked(t, 1)
	// Queued during the first group's sync: one group, big enough to be
	// split by a roll (64 KiB files).
	for range 100 {
		must.NoError(t, j.Append(make([]byte, 1000), cb))
	}
	gate.release()
	waitFor(t, "the hook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) > 0 && events[len(events)-1] == "g" && len(events)-len(ends) == 101
	})
	must.NoError(t, j.Close())
	must.Empty(t, bad)
	st := j.Stats()
	must.Equal(t, uint64(2), st.Groups)
	must.Equal(t, int(st.Syncs), len(ends), "one hook per synced part")
	atLeast(t, st.Rolls, uint64(1))
	// r g r...r g r...r g: the first record, then each part.
	must.Equal(t, []string{"r", "g"}, events[:2])
	for i := 1; i < len(ends); i++ {
		must.Equal(t, 1, ends[i].Compare(ends[i-1]))
	}
}
